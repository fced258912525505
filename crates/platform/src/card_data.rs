//! The card-data guard: no primary account number (PAN) enters either
//! service, whatever field it is sent in and however it is spelled.
//!
//! Every JSON request body is walked before anything else reads it (before
//! it is parsed into a request type, stored, or could be logged). Each
//! *decoded* string (so `"\u0034242…"` is seen as `4242…`), each object key
//! and each integer is scanned for a run of 13 to 19 digits, with single
//! spaces or dashes allowed between groups, that passes the Luhn check. A
//! string that is a UUID is skipped (its segments are not a card number).
//! A hit is `400 card_data_refused`, and the body is dropped unread.
//!
//! The same walk refuses text no client has reason to send: a control
//! character (C0 but tab, line feed and carriage return; DEL; C1) in any
//! string or key is `400 validation_error` (PostgreSQL refuses NUL, logs and
//! terminals misread the rest). Paths and query strings may hold no control
//! character at all.
//!
//! The walk borrows strings without escapes and allocates for nothing
//! else, so it costs one tokenizing pass over the body.

use std::fmt;

use actix_web::http::StatusCode;
use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};

use crate::problem::Problem;

/// Refuses `body` if any of its values holds a card number or a control
/// character. A body that is not JSON passes (the parser reports it next).
pub fn refuse_hostile_text(body: &[u8]) -> Result<(), Problem> {
    let mut deserializer = serde_json::Deserializer::from_slice(body);
    match Scan.deserialize(&mut deserializer) {
        Err(error) if error.to_string().starts_with(FOUND) => Err(refused()),
        Err(error) if error.to_string().starts_with(CONTROL) => Err(control_refused("body")),
        _ => Ok(()),
    }
}

/// Whether `text` holds a control character a client has no reason to
/// send in JSON text: C0 controls but tab, line feed and carriage return;
/// DEL; C1 controls.
pub fn holds_control_character(text: &str) -> bool {
    text.chars()
        .any(|c| c.is_control() && !matches!(c, '\t' | '\n' | '\r'))
}

/// The problem of text holding control characters, in `part` of the request.
fn control_refused(part: &str) -> Problem {
    Problem::validation(vec![crate::problem::FieldError::new(
        part,
        "must not contain control characters",
    )])
}

/// The problem of a refused card number.
fn refused() -> Problem {
    Problem::new(
        StatusCode::BAD_REQUEST,
        "card_data_refused",
        "Card data is not accepted",
    )
    .with_detail(
        "send a payment provider token (e.g. tok_visa); card numbers never enter this system",
    )
}

/// Middleware: refuses a request whose path or query string holds a card
/// number (percent-decoded, `+` read as a space in the query) or any control
/// character, before any handler, log line or store sees it. Bodies are
/// checked where they are read ([`refuse_hostile_text`]).
pub async fn refuse_in_url(
    request: actix_web::dev::ServiceRequest,
    next: actix_web::middleware::Next<impl actix_web::body::MessageBody + 'static>,
) -> Result<actix_web::dev::ServiceResponse<actix_web::body::BoxBody>, actix_web::Error> {
    let path = percent_decode(request.path(), false);
    let query = percent_decode(request.query_string(), true);
    if holds_card_number(&path) || query.split('&').any(holds_card_number) {
        let response = actix_web::ResponseError::error_response(&refused());
        return Ok(request.into_response(response));
    }
    let controlled = |text: &str| text.chars().any(char::is_control);
    if controlled(&path) || controlled(&query) {
        let part = if controlled(&path) { "path" } else { "query" };
        let response = actix_web::ResponseError::error_response(&control_refused(part));
        return Ok(request.into_response(response));
    }
    Ok(next.call(request).await?.map_into_boxed_body())
}

/// `%XX` decoded (invalid escapes kept as written), `+` as a space in a
/// query; bytes that are not UTF-8 are replaced.
fn percent_decode(text: &str, plus_is_space: bool) -> String {
    let bytes = text.as_bytes();
    let hex = |at: usize| bytes.get(at).and_then(|b| (*b as char).to_digit(16));
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match (bytes[i], hex(i + 1), hex(i + 2)) {
            (b'%', Some(high), Some(low)) => {
                // Two hex digits: at most 255.
                out.push(u8::try_from(high * 16 + low).unwrap_or(b'?'));
                i += 3;
                continue;
            }
            (b'+', _, _) if plus_is_space => out.push(b' '),
            (other, _, _) => out.push(other),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Whether `text` holds a card number: 13 to 19 digits passing the Luhn
/// check, written as one run or grouped the way cards are printed
/// (4-4-4-4…, or Amex's 4-6-5) with single spaces or dashes. The number must
/// stand on its own: a run touching a letter or digit, also across a dash
/// (as in the middle of a UUID), is not one, and neither is a string that is
/// a UUID.
pub fn holds_card_number(text: &str) -> bool {
    if text.len() == 36 && uuid::Uuid::try_parse(text).is_ok() {
        return false;
    }
    let text = text.as_bytes();
    let is_alnum = |i: usize| text.get(i).is_some_and(u8::is_ascii_alphanumeric);
    let is_dash = |i: usize| text.get(i) == Some(&b'-');
    let mut start = 0;
    while start < text.len() {
        if !text[start].is_ascii_digit() {
            start += 1;
            continue;
        }
        // Groups of digits separated by single spaces or dashes.
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

/// The Luhn (mod 10) check of a card number's digits.
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

const FOUND: &str = "card number found";
const CONTROL: &str = "control character found";

/// Walks any JSON value, failing with [`FOUND`] at the first card number.
#[derive(Clone, Copy)]
struct Scan;

impl<'de> DeserializeSeed<'de> for Scan {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Scan {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_str<E: de::Error>(self, value: &str) -> Result<(), E> {
        if holds_control_character(value) {
            Err(E::custom(CONTROL))
        } else if holds_card_number(value) {
            Err(E::custom(FOUND))
        } else {
            Ok(())
        }
    }

    fn visit_u64<E: de::Error>(self, value: u64) -> Result<(), E> {
        self.visit_str(&value.to_string())
    }

    fn visit_i64<E: de::Error>(self, value: i64) -> Result<(), E> {
        self.visit_str(&value.unsigned_abs().to_string())
    }

    fn visit_f64<E: de::Error>(self, _: f64) -> Result<(), E> {
        Ok(())
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<(), E> {
        Ok(())
    }

    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        Ok(())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while seq.next_element_seed(self)?.is_some() {}
        Ok(())
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        while map.next_key_seed(self)?.is_some() {
            map.next_value_seed(self)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_read_decoded() {
        assert_eq!(
            percent_decode("reason=card%204242424242424242", true),
            "reason=card 4242424242424242"
        );
        assert_eq!(percent_decode("a+b%2", true), "a b%2");
        assert_eq!(percent_decode("a+b", false), "a+b");
        assert!(holds_card_number(&percent_decode(
            "reason=4242%2D4242%2D4242%2D4242",
            true
        )));
    }
    use proptest::prelude::*;

    #[test]
    fn test_card_numbers_are_found_however_they_are_spelled() {
        for body in [
            r#"{"token": "4242424242424242"}"#,
            r#"{"notes": "card 4242 4242 4242 4242 please"}"#,
            r#"{"notes": "4242-4242-4242-4242"}"#,
            r#"{"token": "\u0034242424242424242"}"#,
            r#"{"items": [{"product_id": 4242424242424242}]}"#,
            r#"{"x": {"4111111111111111": 1}}"#,
            r#"{"amex": "378282246310005"}"#,
            r#"{"token": "4242 4242 4242 4242"}"#,
            r#"{"amount": 5555555555554444}"#,
            r#"{"note": "card 378282246310005 exp 12/30"}"#,
            r#"{"note": "amex 3782 822463 10005"}"#,
            r#"{"token": "4222222222222"}"#,
        ] {
            assert!(refuse_hostile_text(body.as_bytes()).is_err(), "{body}");
        }
    }

    #[test]
    fn ordinary_values_pass() {
        for body in [
            r#"{"order_id": "12345678-1234-1234-1234-123456789012"}"#,
            r#"{"id": "00000000-0000-7000-8000-000000000000"}"#,
            r#"{"phone": "555-123-4567", "tracking_number": "1Z999AA10123456784"}"#,
            r#"{"n": 4242424242424241, "price": 29.99, "ok": true, "none": null}"#,
            r#"{"long": "42424242424242424242424242"}"#,
            r#"not json"#,
            r#"{"token": "tok_visa", "amount": "59.98", "currency": "USD"}"#,
            r#"{"order_id": "01a2018f-f99e-752f-bdfe-6b83f73f1a06"}"#,
            r#"{"token": "4242424242424241"}"#,
            r#"{"amount": "1234567890.12"}"#,
            // A UUID whose middle reads 4222-2222-2222-2…, Luhn-valid as 13 digits.
            r#"{"order_id": "01a201ab-4222-2222-2222-2abcdef01234"}"#,
            r#"{"note": "re 01a201ab-4222-2222-2222-222222222222"}"#,
            r#"{"note": "call 555-0100 or 555-0199"}"#,
        ] {
            assert!(refuse_hostile_text(body.as_bytes()).is_ok(), "{body}");
        }
    }

    /// A random card number: `length` digits whose last makes Luhn pass.
    fn card(length: usize) -> impl Strategy<Value = Vec<u8>> {
        proptest::collection::vec(0_u8..=9, length - 1).prop_map(|mut digits| {
            digits.push(0);
            for check in 0..=9 {
                *digits.last_mut().unwrap() = check;
                if luhn(&digits) {
                    break;
                }
            }
            digits
        })
    }

    fn spelled(digits: &[u8], separator: Option<char>, escape: bool) -> String {
        let mut text = String::new();
        for (index, digit) in digits.iter().enumerate() {
            if index > 0
                && index % 4 == 0
                && let Some(separator) = separator
            {
                text.push(separator);
            }
            if escape {
                text.push_str(&format!("\\u{:04x}", u32::from(b'0' + digit)));
            } else {
                text.push(char::from(b'0' + digit));
            }
        }
        text
    }

    #[test]
    fn control_characters_are_refused_but_line_breaks_pass() {
        for body in [
            r#"{"method": "card\u0000x"}"#,
            r#"{"notes": "a\u0001b"}"#,
            r#"{"notes": "a\u007fb"}"#,
            r#"{"notes": "a\u009bb"}"#,
            r#"{"x\u0000": 1}"#,
            r#"{"items": [{"name": "\u001b[31mred"}]}"#,
        ] {
            let problem = refuse_hostile_text(body.as_bytes()).expect_err(body);
            assert_eq!(problem.kind, "validation_error", "{body}");
        }
        for body in [
            r#"{"notes": "line one\nline two\r\n\tindented"}"#,
            r#"{"notes": "caf\u00e9 \u2603"}"#,
        ] {
            assert!(refuse_hostile_text(body.as_bytes()).is_ok(), "{body}");
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2_000))]
        /// The false positive that once refused 0.2% of real orders.
        #[test]
        fn uuids_are_never_card_numbers(bits in any::<u128>(), words in "[a-z ]{0,12}") {
            let id = uuid::Uuid::from_u128(bits);
            let body = serde_json::json!({"order_id": id, "note": format!("{words} {id}")}).to_string();
            prop_assert!(refuse_hostile_text(body.as_bytes()).is_ok(), "{}", body);
        }

        #[test]
        fn every_card_number_is_refused(
            digits in (13_usize..=19).prop_flat_map(card),
            separator in prop::sample::select(vec![None, Some(' '), Some('-')]),
            escape in any::<bool>(),
            field in "[a-z_]{1,12}",
            prefix in "([a-zA-Z:]{1,10} )?",
        ) {
            let value = spelled(&digits, separator, escape);
            let body = format!(r#"{{"{field}": "{prefix}{value}"}}"#);
            prop_assert!(refuse_hostile_text(body.as_bytes()).is_err(), "{}", body);
        }

        #[test]
        fn what_is_not_a_card_number_passes(
            uuid in any::<u128>(),
            short in 0_u64..1_000_000_000_000,
            words in "[a-zA-Z ,.]{0,40}",
            digits in (13_usize..=19).prop_flat_map(card),
        ) {
            // A UUID, any number of fewer than 13 digits, prose, and a card
            // number with its check digit broken.
            let mut broken = digits;
            let last = broken.len() - 1;
            broken[last] = (broken[last] + 1) % 10;
            let broken = spelled(&broken, None, false);
            let body = serde_json::json!({
                "id": uuid::Uuid::from_u128(uuid).to_string(),
                "short": short,
                "text": format!("{words} {short}"),
                "broken": broken,
            })
            .to_string();
            prop_assert!(refuse_hostile_text(body.as_bytes()).is_ok(), "{}", body);
        }
    }
}
