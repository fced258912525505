//! `Idempotency-Key`: parsing the header and fingerprinting the request.
//!
//! Keys are scoped to the caller (the token's subject). The fingerprint is a
//! SHA-256 of the body re-serialized from parsed JSON: serde_json's maps are
//! sorted, so key order and whitespace do not change it; any change of a
//! value does. Each service stores keys in its own schema.

use actix_web::HttpRequest;
use sha2::{Digest, Sha256};

use crate::problem::{FieldError, Problem};

/// Header carrying the key.
pub const HEADER: &str = "idempotency-key";
/// Header marking a replayed response.
pub const REPLAYED_HEADER: &str = "Idempotent-Replayed";

/// A key and the fingerprint of the body it came with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdempotencyKey {
    pub key: String,
    pub request_hash: String,
}

/// The request's key, if it sent one; a malformed key is a 400.
pub fn from_request(
    request: &HttpRequest,
    body: &serde_json::Value,
) -> Result<Option<IdempotencyKey>, Problem> {
    let Some(value) = request.headers().get(HEADER) else {
        return Ok(None);
    };
    let key = value
        .to_str()
        .ok()
        .map(str::trim)
        .filter(|key| (1..=255).contains(&key.len()) && key.chars().all(|c| c.is_ascii_graphic()))
        .ok_or_else(|| {
            Problem::validation(vec![FieldError::new(
                "header.Idempotency-Key",
                "must be 1 to 255 printable ASCII characters",
            )])
        })?;
    Ok(Some(IdempotencyKey {
        key: key.to_owned(),
        request_hash: fingerprint(body),
    }))
}

/// SHA-256 (hex) of the canonical JSON of `body`.
pub fn fingerprint(body: &serde_json::Value) -> String {
    let canonical = serde_json::to_vec(body).unwrap_or_default();
    Sha256::digest(&canonical)
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect()
}

/// 422: the key was used with another body.
pub fn mismatch() -> Problem {
    Problem::new(
        actix_web::http::StatusCode::UNPROCESSABLE_ENTITY,
        "idempotency_key_reused",
        "Idempotency-Key reused",
    )
    .with_detail("this Idempotency-Key was used with a different request body")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_fingerprint_ignores_key_order_and_whitespace_but_not_values() {
        let a: serde_json::Value = serde_json::from_str(r#"{"a": 1, "b": [1, 2]}"#).unwrap();
        let b: serde_json::Value = serde_json::from_str(r#"{ "b":[1,2],"a":1 }"#).unwrap();
        let c: serde_json::Value = serde_json::from_str(r#"{"a": 2, "b": [1, 2]}"#).unwrap();
        assert_eq!(fingerprint(&a), fingerprint(&b));
        assert_ne!(fingerprint(&a), fingerprint(&c));
    }
}
