//! Payments' domain: the payment state machine, the rule of what may be
//! charged, and the card-data guard. No I/O.

use contracts::money::Money;
use contracts::order::OrderStatus;
use contracts::payment::{CaptureMethod, PaymentStatus, RefundLine, RefundStatus};
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
    /// Taken at once, or authorized now and captured later.
    pub capture_method: CaptureMethod,
    pub status: PaymentStatus,
    pub failure_reason: Option<String>,
    pub provider_reference: Option<String>,
    pub refund_reference: Option<String>,
    /// What was taken (0 until the charge succeeds).
    pub captured: Money,
    /// What the provider gave back (refunds done).
    pub refunded: Money,
    /// What accepted refunds not done yet will give back (reserved: it
    /// cannot be refunded twice).
    pub refund_pending: Money,
    pub created_at: OffsetDateTime,
    pub updated_at: OffsetDateTime,
}

/// A refund of (part of) a payment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refund {
    pub id: Uuid,
    pub payment_id: Uuid,
    pub amount: Money,
    pub status: RefundStatus,
    pub reason: String,
    pub items: Vec<RefundLine>,
    /// Who asked (a subject).
    pub requested_by: String,
    pub provider_reference: Option<String>,
    pub failure_reason: Option<String>,
    pub created_at: OffsetDateTime,
    pub updated_at: OffsetDateTime,
}

/// Why a capture may not be made as asked.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CaptureRefusal {
    /// Only an authorized payment can be captured.
    #[error("the payment is {} and cannot be captured", .0.as_str())]
    NotCapturable(PaymentStatus),
    #[error("at most {authorized} {} is authorized", authorized.currency())]
    ExceedsAuthorized { authorized: Money },
    #[error("a capture must be greater than zero")]
    Zero,
    #[error("{0}")]
    InvalidAmount(String),
}

/// Why a refund may not be taken as asked.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RefundRefusal {
    /// Nothing was taken (failed, still processing): nothing to give back.
    #[error("the payment is {} and has nothing to refund", .0.as_str())]
    NotRefundable(PaymentStatus),
    /// More than what remains of what was captured.
    #[error("at most {refundable} {} can still be refunded", refundable.currency())]
    ExceedsCaptured { refundable: Money },
    #[error("the payment is in {expected}")]
    CurrencyMismatch {
        expected: contracts::money::Currency,
    },
    #[error("a refund must be greater than zero")]
    Zero,
    /// The amount cannot be read in the payment's currency.
    #[error("{0}")]
    InvalidAmount(String),
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
        capture_method: CaptureMethod,
        now: OffsetDateTime,
    ) -> Payment {
        Payment {
            id,
            order_id,
            user_id,
            amount,
            method,
            capture_method,
            status: PaymentStatus::Processing,
            failure_reason: None,
            provider_reference: None,
            refund_reference: None,
            captured: Money::zero(amount.currency()),
            refunded: Money::zero(amount.currency()),
            refund_pending: Money::zero(amount.currency()),
            created_at: now,
            updated_at: now,
        }
    }

    /// What may still be refunded: captured, less what was refunded or is
    /// being refunded.
    pub fn refundable(&self) -> Money {
        let minor = self.captured.minor() - self.refunded.minor() - self.refund_pending.minor();
        Money::from_minor(minor.max(0), self.amount.currency())
            .unwrap_or_else(|_| Money::zero(self.amount.currency()))
    }

    /// Decides a refund of `amount` (all that remains when `None`): the
    /// amount to reserve, or why not. Only money taken can be given back,
    /// and never more than remains of it.
    pub fn refund_amount(&self, amount: Option<Money>) -> Result<Money, RefundRefusal> {
        use PaymentStatus::*;
        match self.status {
            Succeeded | PartiallyRefunded | Refunded => {}
            Pending | Processing | Authorized | Voided | Failed => {
                return Err(RefundRefusal::NotRefundable(self.status));
            }
        }
        let refundable = self.refundable();
        let amount = amount.unwrap_or(refundable);
        if amount.currency() != self.amount.currency() {
            return Err(RefundRefusal::CurrencyMismatch {
                expected: self.amount.currency(),
            });
        }
        if amount.minor() > refundable.minor() {
            return Err(RefundRefusal::ExceedsCaptured { refundable });
        }
        if amount.minor() <= 0 {
            return Err(if refundable.minor() == 0 {
                RefundRefusal::ExceedsCaptured { refundable }
            } else {
                RefundRefusal::Zero
            });
        }
        Ok(amount)
    }

    /// Decides a capture of `amount` (the whole authorization when `None`):
    /// only an authorized payment, never more than it holds.
    pub fn capture_amount(&self, amount: Option<Money>) -> Result<Money, CaptureRefusal> {
        if self.status != PaymentStatus::Authorized {
            return Err(CaptureRefusal::NotCapturable(self.status));
        }
        let amount = amount.unwrap_or(self.amount);
        if amount.currency() != self.amount.currency() || amount.minor() > self.amount.minor() {
            return Err(CaptureRefusal::ExceedsAuthorized {
                authorized: self.amount,
            });
        }
        if amount.minor() <= 0 {
            return Err(CaptureRefusal::Zero);
        }
        Ok(amount)
    }

    /// The status once refunds done add up to `refunded`.
    pub fn status_after_refunds(&self) -> PaymentStatus {
        if self.refunded.minor() <= 0 {
            self.status
        } else if self.refunded.minor() >= self.captured.minor() {
            PaymentStatus::Refunded
        } else {
            PaymentStatus::PartiallyRefunded
        }
    }

    fn allows(&self, to: PaymentStatus) -> bool {
        use PaymentStatus::*;
        matches!(
            (self.status, to),
            (Pending, Processing)
                | (Pending | Processing, Succeeded | Authorized | Failed)
                | (Authorized, Succeeded | Voided)
                | (Succeeded | PartiallyRefunded, PartiallyRefunded | Refunded)
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
        payment.captured = payment.amount;
        Ok(payment)
    }

    /// Manual capture: the provider holds the amount (`reference`).
    pub fn authorized(
        self,
        reference: String,
        now: OffsetDateTime,
    ) -> Result<Payment, InvalidTransition> {
        let mut payment = self.moved(PaymentStatus::Authorized, now)?;
        payment.provider_reference = Some(reference);
        Ok(payment)
    }

    /// Manual capture: `amount` of the hold was taken (the rest released).
    pub fn captured(
        self,
        amount: Money,
        now: OffsetDateTime,
    ) -> Result<Payment, InvalidTransition> {
        let mut payment = self.moved(PaymentStatus::Succeeded, now)?;
        payment.captured = amount;
        Ok(payment)
    }

    /// Manual capture: the hold was released; nothing was taken.
    pub fn voided(self, now: OffsetDateTime) -> Result<Payment, InvalidTransition> {
        self.moved(PaymentStatus::Voided, now)
    }

    pub fn failed(self, reason: String, now: OffsetDateTime) -> Result<Payment, InvalidTransition> {
        let mut payment = self.moved(PaymentStatus::Failed, now)?;
        payment.failure_reason = Some(reason);
        Ok(payment)
    }

    /// A refund of `amount` was done by the provider (`reference`): it
    /// leaves the pending refunds for the refunded ones.
    pub fn refund_done(
        self,
        amount: Money,
        reference: String,
        now: OffsetDateTime,
    ) -> Result<Payment, InvalidTransition> {
        let mut next = self.clone();
        next.refund_pending = Money::from_minor(
            (self.refund_pending.minor() - amount.minor()).max(0),
            amount.currency(),
        )
        .unwrap_or(self.refund_pending);
        next.refunded = self
            .refunded
            .checked_add(amount)
            .map_err(|_| InvalidTransition {
                from: self.status,
                to: PaymentStatus::Refunded,
            })?;
        let to = next.status_after_refunds();
        let mut next = if to == self.status {
            next
        } else {
            next.moved(to, now)?
        };
        next.refund_reference = Some(reference);
        next.updated_at = now;
        Ok(next)
    }
}

#[cfg(test)]
mod tests;
