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

/// True if `text` contains something shaped like a card number: 13 to 19
/// digits passing the Luhn check, written either as one run or grouped the way
/// cards are printed (4-4-4-4…, or Amex's 4-6-5) with single spaces or dashes.
/// The number must stand on its own: a run touching a letter or digit, also
/// across a dash (as in the middle of a UUID), is not a card number. Card data
/// must never enter the system; requests carrying it are refused before they
/// are parsed or logged.
pub fn contains_card_number(text: &[u8]) -> bool {
    let is_alnum = |i: usize| text.get(i).is_some_and(u8::is_ascii_alphanumeric);
    let is_dash = |i: usize| text.get(i) == Some(&b'-');
    let mut start = 0;
    while start < text.len() {
        if !text[start].is_ascii_digit() {
            start += 1;
            continue;
        }
        // Collect groups of digits separated by single spaces or dashes.
        let mut groups: Vec<usize> = vec![0];
        let mut digits: Vec<u8> = Vec::with_capacity(19);
        let mut end = start;
        while end < text.len() {
            match text[end] {
                b'0'..=b'9' => {
                    digits.push(text[end] - b'0');
                    if let Some(last) = groups.last_mut() {
                        *last += 1;
                    }
                    end += 1;
                }
                b' ' | b'-' if text.get(end + 1).is_some_and(u8::is_ascii_digit) => {
                    groups.push(0);
                    end += 1;
                }
                _ => break,
            }
        }
        let standalone_start = start == 0
            || !(is_alnum(start - 1) || (is_dash(start - 1) && start >= 2 && is_alnum(start - 2)));
        let standalone_end = !(is_alnum(end) || (is_dash(end) && is_alnum(end + 1)));
        if standalone_start && standalone_end && card_shaped(&groups) && luhn(&digits) {
            return true;
        }
        start = end.max(start + 1);
    }
    false
}

/// 13 to 19 digits, as one run or in printed card grouping.
fn card_shaped(groups: &[usize]) -> bool {
    let total: usize = groups.iter().sum();
    if !(13..=19).contains(&total) {
        return false;
    }
    match groups {
        [_] => true,
        [4, 6, 5] => true,
        [init @ .., last] => init.iter().all(|g| *g == 4) && (1..=4).contains(last),
        [] => false,
    }
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
            r#"{"note": "amex 3782 822463 10005"}"#,
            r#"{"token": "4222222222222"}"#,
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
            // A UUID whose middle reads 4222-2222-2222-2…, Luhn-valid as 13 digits.
            r#"{"order_id": "01a201ab-4222-2222-2222-2abcdef01234"}"#,
            r#"{"order_id": "01a201ab-4222-2222-2222-222222222222"}"#,
            r#"{"note": "call 555-0100 or 555-0199"}"#,
        ] {
            assert!(!contains_card_number(body.as_bytes()), "{body}");
        }
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(10_000))]
        /// The false positive that once refused 0.2% of real orders.
        #[test]
        fn uuids_are_never_card_numbers(bits in proptest::prelude::any::<u128>()) {
            let body = format!(r#"{{"order_id":"{}","amount":"59.98"}}"#, Uuid::from_u128(bits));
            proptest::prop_assert!(!contains_card_number(body.as_bytes()), "{}", body);
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
