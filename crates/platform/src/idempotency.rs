//! `Idempotency-Key`: parsing the header and fingerprinting the request.
//!
//! Keys are scoped to the caller (the token's subject). The fingerprint binds
//! the key to the request: a SHA-256 of the method, the matched route
//! pattern with its (decoded) path parameters, and the body re-serialized
//! from parsed JSON (serde_json's maps are sorted, so key order and
//! whitespace do not change it; any change of a value does). The same key on
//! another route, or on the same route for another order, is therefore a
//! different request (`422 idempotency_key_reused`). Each service stores keys
//! in its own schema.

use actix_web::HttpRequest;
use sha2::{Digest, Sha256};

use crate::problem::{FieldError, Problem};

/// Header carrying the key.
pub const HEADER: &str = "idempotency-key";
/// Header marking a replayed response.
pub const REPLAYED_HEADER: &str = "Idempotent-Replayed";

/// How long keys live (`idempotency:` in the configuration).
#[derive(Debug, Clone, Copy)]
pub struct KeyPolicy {
    /// How long a key is remembered.
    pub ttl: time::Duration,
    /// A request in flight this long is presumed dead; a retry takes over.
    pub stale_after: time::Duration,
}

/// A key and the fingerprint of the body it came with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdempotencyKey {
    pub key: String,
    pub request_hash: String,
}

/// Like [`from_request`] for a body kept as text: the body is parsed for
/// the fingerprint only when the request sent a key.
pub fn from_raw(
    request: &HttpRequest,
    body: &crate::json::RawJson,
) -> Result<Option<IdempotencyKey>, Problem> {
    if request.headers().get(HEADER).is_none() {
        return Ok(None);
    }
    from_request(request, &body.parse()?)
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
    let route = request
        .match_pattern()
        .unwrap_or_else(|| request.path().to_owned());
    let parameters: Vec<(&str, &str)> = request.match_info().iter().collect();
    Ok(Some(IdempotencyKey {
        key: key.to_owned(),
        request_hash: fingerprint(request.method().as_str(), &route, &parameters, body),
    }))
}

/// SHA-256 (hex) of the method, the route pattern, its path parameters and
/// the canonical JSON of `body`, each length-prefixed so that no two
/// requests share an encoding.
pub fn fingerprint(
    method: &str,
    route: &str,
    parameters: &[(&str, &str)],
    body: &serde_json::Value,
) -> String {
    let mut hasher = Sha256::new();
    let mut part = |bytes: &[u8]| {
        hasher.update((bytes.len() as u64).to_be_bytes());
        hasher.update(bytes);
    };
    part(method.as_bytes());
    part(route.as_bytes());
    for (name, value) in parameters {
        part(name.as_bytes());
        part(value.as_bytes());
    }
    part(&serde_json::to_vec(body).unwrap_or_default());
    hasher
        .finalize()
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
    .with_detail(
        "this Idempotency-Key was used for a different request (another body, route or resource)",
    )
}

/// 409: the first request with this key is still being processed.
pub fn in_flight() -> Problem {
    Problem::new(
        actix_web::http::StatusCode::CONFLICT,
        contracts::problem::IDEMPOTENCY_IN_FLIGHT,
        "Request in progress",
    )
    .with_detail("a request with this Idempotency-Key is still being processed; retry later")
    .with_retry_after(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_fingerprint_ignores_key_order_and_whitespace_but_not_values_or_routes() {
        let a: serde_json::Value = serde_json::from_str(r#"{"a": 1, "b": [1, 2]}"#).unwrap();
        let b: serde_json::Value = serde_json::from_str(r#"{ "b":[1,2],"a":1 }"#).unwrap();
        let c: serde_json::Value = serde_json::from_str(r#"{"a": 2, "b": [1, 2]}"#).unwrap();
        let route = "/api/v1/orders/{id}/items";
        let on = |id: &str, body| fingerprint("POST", route, &[("id", id)], body);
        assert_eq!(on("A", &a), on("A", &b));
        assert_ne!(on("A", &a), on("A", &c));
        assert_ne!(on("A", &a), on("B", &a), "another order");
        assert_ne!(
            on("A", &a),
            fingerprint("POST", "/api/v1/orders", &[], &a),
            "another route"
        );
        assert_ne!(
            on("A", &a),
            fingerprint("PUT", route, &[("id", "A")], &a),
            "another method"
        );
        assert_ne!(
            fingerprint("POST", "/x", &[("ab", "c")], &a),
            fingerprint("POST", "/x", &[("a", "bc")], &a),
            "no ambiguous encodings"
        );
    }
}
