//! Payments' domain: the payment state machine, the rule of what may be
//! charged, and the card-data guard. No I/O.

use contracts::money::Money;
use contracts::order::OrderStatus;
use contracts::payment::PaymentStatus;
use time::OffsetDateTime;
use uuid::Uuid;

/// A payment of one order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Payment {
    pub id: Uuid,
    pub order_id: Uuid,
    pub user_id: String,
    pub amount: Money,
    pub method: String,
    pub status: PaymentStatus,
    pub failure_reason: Option<String>,
    pub provider_reference: Option<String>,
    pub refund_reference: Option<String>,
    pub created_at: OffsetDateTime,
    pub updated_at: OffsetDateTime,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("a payment cannot go from {from:?} to {to:?}")]
pub struct InvalidTransition {
    pub from: PaymentStatus,
    pub to: PaymentStatus,
}

/// What payments needs to know of an order before charging it (read from
/// orders, the authority, just before the charge).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrderFacts {
    pub id: Uuid,
    pub user_id: String,
    pub status: OrderStatus,
    pub total: Money,
}

/// Why an order may not be charged as asked.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// No such order, or not the caller's (the two are indistinguishable).
    #[error("no such order")]
    OrderNotFound,
    #[error("the order is {} and cannot be paid", .0.as_str())]
    NotPayable(OrderStatus),
    #[error("the order's total is {expected} {}", expected.currency())]
    AmountMismatch { expected: Money },
}

/// Who is paying for what.
#[derive(Debug, Clone, Copy)]
pub struct ChargeRequest<'a> {
    /// The caller's subject.
    pub caller: &'a str,
    /// The caller holds `payments.admin` (operators, the orders service).
    pub admin: bool,
    /// Whose order the caller says it is (the caller unless an admin names
    /// someone).
    pub payer: &'a str,
    pub amount: Money,
}

/// A charge needs a payable order: one that exists, belongs to the caller
/// (or the caller is an admin paying for the order's owner), is `pending`,
/// and is charged exactly its current total in its currency.
pub fn check_payable(
    order: Option<&OrderFacts>,
    request: ChargeRequest<'_>,
) -> Result<(), Refusal> {
    let order = order
        .filter(|order| order.user_id == request.payer)
        .filter(|order| request.admin || order.user_id == request.caller)
        .ok_or(Refusal::OrderNotFound)?;
    if order.status != OrderStatus::Pending {
        return Err(Refusal::NotPayable(order.status));
    }
    if request.amount != order.total {
        return Err(Refusal::AmountMismatch {
            expected: order.total,
        });
    }
    Ok(())
}

impl Payment {
    /// A new payment, being charged.
    pub fn start(
        id: Uuid,
        order_id: Uuid,
        user_id: String,
        amount: Money,
        method: String,
        now: OffsetDateTime,
    ) -> Payment {
        Payment {
            id,
            order_id,
            user_id,
            amount,
            method,
            status: PaymentStatus::Processing,
            failure_reason: None,
            provider_reference: None,
            refund_reference: None,
            created_at: now,
            updated_at: now,
        }
    }

    fn allows(&self, to: PaymentStatus) -> bool {
        use PaymentStatus::*;
        matches!(
            (self.status, to),
            (Pending, Processing)
                | (Pending | Processing, Succeeded | Failed)
                | (Succeeded, Refunded)
        )
    }

    fn moved(
        mut self,
        to: PaymentStatus,
        now: OffsetDateTime,
    ) -> Result<Payment, InvalidTransition> {
        if !self.allows(to) {
            return Err(InvalidTransition {
                from: self.status,
                to,
            });
        }
        self.status = to;
        self.updated_at = now;
        Ok(self)
    }

    pub fn succeeded(
        self,
        reference: String,
        now: OffsetDateTime,
    ) -> Result<Payment, InvalidTransition> {
        let mut payment = self.moved(PaymentStatus::Succeeded, now)?;
        payment.provider_reference = Some(reference);
        Ok(payment)
    }

    pub fn failed(self, reason: String, now: OffsetDateTime) -> Result<Payment, InvalidTransition> {
        let mut payment = self.moved(PaymentStatus::Failed, now)?;
        payment.failure_reason = Some(reason);
        Ok(payment)
    }

    pub fn refunded(
        self,
        reference: String,
        now: OffsetDateTime,
    ) -> Result<Payment, InvalidTransition> {
        let mut payment = self.moved(PaymentStatus::Refunded, now)?;
        payment.refund_reference = Some(reference);
        Ok(payment)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use contracts::money::Currency;

    fn usd(amount: &str) -> Money {
        Money::parse(amount, Currency::parse("USD").unwrap()).unwrap()
    }

    fn order(status: OrderStatus) -> OrderFacts {
        OrderFacts {
            id: Uuid::now_v7(),
            user_id: "alice".into(),
            status,
            total: usd("59.98"),
        }
    }

    fn request<'a>(
        caller: &'a str,
        admin: bool,
        payer: &'a str,
        amount: &str,
    ) -> ChargeRequest<'a> {
        ChargeRequest {
            caller,
            admin,
            payer,
            amount: usd(amount),
        }
    }

    #[test]
    fn only_the_owner_or_an_admin_pays_a_pending_order_its_exact_total() {
        let pending = order(OrderStatus::Pending);
        let alice = request("alice", false, "alice", "59.98");
        assert_eq!(check_payable(Some(&pending), alice), Ok(()));
        assert_eq!(
            check_payable(
                Some(&pending),
                request("svc-orders", true, "alice", "59.98")
            ),
            Ok(())
        );
        // Another user, or an admin naming the wrong payer: as if absent.
        for stranger in [
            request("bob", false, "bob", "59.98"),
            request("bob", false, "alice", "59.98"),
            request("ops", true, "bob", "59.98"),
        ] {
            assert_eq!(
                check_payable(Some(&pending), stranger),
                Err(Refusal::OrderNotFound)
            );
        }
        assert_eq!(check_payable(None, alice), Err(Refusal::OrderNotFound));
        for status in [
            OrderStatus::Paid,
            OrderStatus::Cancelled,
            OrderStatus::Shipped,
        ] {
            assert_eq!(
                check_payable(Some(&order(status)), alice),
                Err(Refusal::NotPayable(status))
            );
        }
        assert_eq!(
            check_payable(Some(&pending), request("alice", false, "alice", "0.01")),
            Err(Refusal::AmountMismatch {
                expected: usd("59.98")
            })
        );
        let euros = ChargeRequest {
            amount: Money::parse("59.98", Currency::parse("EUR").unwrap()).unwrap(),
            ..alice
        };
        assert_eq!(
            check_payable(Some(&pending), euros),
            Err(Refusal::AmountMismatch {
                expected: usd("59.98")
            })
        );
    }

    #[test]
    fn a_payment_moves_only_forward() {
        let usd = Currency::parse("USD").unwrap();
        let now = time::OffsetDateTime::now_utc();
        let payment = Payment::start(
            Uuid::now_v7(),
            Uuid::now_v7(),
            "usr".into(),
            Money::parse("1.00", usd).unwrap(),
            "card".into(),
            now,
        );
        let failed = payment.clone().failed("card_declined".into(), now).unwrap();
        assert!(failed.clone().succeeded("x".into(), now).is_err());
        assert!(failed.refunded("x".into(), now).is_err());
        let succeeded = payment.succeeded("ch_1".into(), now).unwrap();
        let refunded = succeeded.refunded("re_1".into(), now).unwrap();
        assert_eq!(refunded.status, PaymentStatus::Refunded);
        assert!(refunded.refunded("re_2".into(), now).is_err());
    }
}
