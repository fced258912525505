//! Payments' domain: the payment state machine and the card-data guard. No I/O.

use contracts::money::Money;
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

/// True if `text` contains something shaped like a card number: a run of 13
/// to 19 digits (optionally grouped by single spaces or dashes) that passes
/// the Luhn check. Card data must never enter the system; requests carrying it
/// are refused before they are parsed or logged.
pub fn contains_card_number(text: &[u8]) -> bool {
    let mut digits: Vec<u8> = Vec::with_capacity(19);
    let mut previous_was_separator = false;
    let check = |digits: &mut Vec<u8>| {
        let found = (13..=19).contains(&digits.len()) && luhn(digits);
        digits.clear();
        found
    };
    for &byte in text {
        match byte {
            b'0'..=b'9' => {
                digits.push(byte - b'0');
                previous_was_separator = false;
            }
            b' ' | b'-' if !digits.is_empty() && !previous_was_separator => {
                previous_was_separator = true;
            }
            _ => {
                if check(&mut digits) {
                    return true;
                }
                previous_was_separator = false;
            }
        }
    }
    check(&mut digits)
}

fn luhn(digits: &[u8]) -> bool {
    let sum: u32 = digits
        .iter()
        .rev()
        .enumerate()
        .map(|(index, &digit)| {
            let digit = u32::from(digit);
            if index % 2 == 1 {
                let doubled = digit * 2;
                if doubled > 9 { doubled - 9 } else { doubled }
            } else {
                digit
            }
        })
        .sum();
    sum.is_multiple_of(10)
}

#[cfg(test)]
mod tests {
    use super::*;
    use contracts::money::Currency;

    #[test]
    fn card_numbers_are_spotted_however_they_are_written() {
        for body in [
            r#"{"token": "4242424242424242"}"#,
            r#"{"token": "4242 4242 4242 4242"}"#,
            r#"{"token": "4242-4242-4242-4242"}"#,
            r#"{"amount": 5555555555554444}"#,
            r#"{"note": "card 378282246310005 exp 12/30"}"#,
        ] {
            assert!(contains_card_number(body.as_bytes()), "{body}");
        }
    }

    #[test]
    fn ordinary_payloads_are_not_mistaken_for_cards() {
        for body in [
            r#"{"token": "tok_visa", "amount": "59.98", "currency": "USD"}"#,
            r#"{"order_id": "01a2018f-f99e-752f-bdfe-6b83f73f1a06"}"#,
            r#"{"order_id": "12345678-1234-1234-1234-123456789012"}"#,
            r#"{"token": "4242424242424241"}"#,
            r#"{"amount": "1234567890.12"}"#,
        ] {
            assert!(!contains_card_number(body.as_bytes()), "{body}");
        }
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
