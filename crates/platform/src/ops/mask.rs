//! What an operator is shown of a message or a job's payload: everything
//! needed to understand it, nothing that identifies a person or a card.

use serde_json::Value;

/// Fields that hold personal data (a person's name, where they live, how
/// to reach them, what they wrote) or a payment credential, wherever they
/// appear in a document.
pub const MASKED_FIELDS: &[&str] = &[
    "first_name",
    "last_name",
    "name",
    "address_line1",
    "address_line2",
    "line1",
    "line2",
    "postal_code",
    "phone",
    "email",
    "notes",
    "token",
    "card",
    "card_number",
    "cvc",
    "cvv",
];

/// What a masked value is replaced by.
pub const MASK: &str = "[masked]";

/// Masks `value` in place: every field named in [`MASKED_FIELDS`], and any
/// other string that holds a card number.
pub fn json(value: &mut Value) {
    match value {
        Value::Object(fields) => {
            for (name, field) in fields.iter_mut() {
                if MASKED_FIELDS.contains(&name.as_str()) && !field.is_null() {
                    *field = Value::String(MASK.to_owned());
                } else {
                    json(field);
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(json),
        Value::String(text) if crate::card_data::holds_card_number(text) => {
            *text = MASK.to_owned();
        }
        _ => {}
    }
}

/// A message body as an operator sees it: JSON masked, or (not JSON) the
/// first 2 KiB of its text unless it holds a card number.
pub fn body(bytes: &[u8]) -> Value {
    match serde_json::from_slice::<Value>(bytes) {
        Ok(mut value) => {
            json(&mut value);
            value
        }
        Err(_) => {
            let text = String::from_utf8_lossy(&bytes[..bytes.len().min(2048)]).into_owned();
            if crate::card_data::holds_card_number(&text) {
                Value::String(MASK.to_owned())
            } else {
                Value::String(text)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn personal_fields_and_card_numbers_are_masked_anywhere() {
        let mut value = json!({
            "data": {
                "order_id": "o-1",
                "total": "12.50",
                "shipping_address": {"first_name": "Ada", "city": "London", "email": "ada@example.com", "phone": null},
                "notes": "leave at the door",
                "items": [{"name": "Mug", "sku": "MUG-1"}],
                "reason": "card 4242 4242 4242 4242",
            },
            "token": "tok_visa",
        });
        json(&mut value);
        assert_eq!(
            value,
            json!({
                "data": {
                    "order_id": "o-1",
                    "total": "12.50",
                    "shipping_address": {"first_name": MASK, "city": "London", "email": MASK, "phone": null},
                    "notes": MASK,
                    "items": [{"name": MASK, "sku": "MUG-1"}],
                    "reason": MASK,
                },
                "token": MASK,
            })
        );
    }

    #[test]
    fn a_body_that_is_not_json_is_shown_as_text_unless_it_holds_a_card() {
        assert_eq!(body(b"{not json"), json!("{not json"));
        assert_eq!(body(b"pan 4111111111111111"), json!(MASK));
    }
}
