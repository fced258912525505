//! `Idempotency-Key`: parsing the header and fingerprinting the request.
//!
//! Keys are scoped to the caller (the token's subject). The fingerprint binds
//! the key to the request: a SHA-256 of the method, the matched route
//! pattern with its (decoded) path parameters, and the body re-serialized
//! from parsed JSON (serde_json's maps are sorted, so key order and
//! whitespace do not change it; any change of a value does). The same key on
//! another route, or on the same route for another order, is therefore a
//! different request (`422 idempotency_key_reused`). Each service stores keys
//! in its own schema, through one claim ([`KeyTable`]).

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

/// What claiming an Idempotency-Key found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Claim {
    /// This request holds the key now: do the work, store its answer in the
    /// transaction that does it (or release the key if it fails).
    New,
    /// The same request completed before: replay its answer.
    Done { body: Vec<u8> },
    /// The same request is still running.
    InFlight,
    /// The same request started longer ago than `stale_after` and never
    /// answered (its process died): this one takes the key over, with what
    /// the first had started (`resource`, if it got that far).
    Abandoned { resource: Option<uuid::Uuid> },
    /// The key was used for another request.
    Mismatch,
}

/// A service's table of Idempotency-Keys (schema-qualified, e.g.
/// `orders.idempotency_keys`): `owner`, `key` (the primary key),
/// `request_hash`, `resource_id` (what the request started, when a retry
/// must find it), `response_status`, `response_body`, `created_at`.
///
/// Every statement runs on the caller's connection; [`KeyTable::claim`]
/// locks the key's row, so it belongs in the transaction that does the work
/// (or in one of its own, when the work commits elsewhere).
#[derive(Debug, Clone, Copy)]
pub struct KeyTable(pub &'static str);

#[derive(diesel::QueryableByName)]
struct KeyRow {
    #[diesel(sql_type = diesel::sql_types::Text)]
    request_hash: String,
    #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::Uuid>)]
    resource_id: Option<uuid::Uuid>,
    #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::Bytea>)]
    response_body: Option<Vec<u8>>,
    #[diesel(sql_type = diesel::sql_types::Timestamptz)]
    created_at: time::OffsetDateTime,
}

/// The status of every stored answer: only requests that create something
/// take keys here, and their answer is `201 Created`.
const CREATED: i16 = 201;

impl KeyTable {
    /// Claims `owner`'s `key` for a request that would start `resource`,
    /// or says what the key holds. A key older than `policy.ttl` (not yet
    /// swept) counts as new: it is reset for this request.
    pub async fn claim(
        self,
        conn: &mut diesel_async::AsyncPgConnection,
        owner: &str,
        key: &IdempotencyKey,
        resource: Option<uuid::Uuid>,
        now: time::OffsetDateTime,
        policy: KeyPolicy,
    ) -> diesel::QueryResult<Claim> {
        use diesel::sql_types::{Nullable, Text, Timestamptz, Uuid};
        use diesel_async::RunQueryDsl;
        let table = self.0;
        let inserted = crate::db::Prepared(
            diesel::sql_query(format!(
                "INSERT INTO {table} (owner, key, request_hash, resource_id, created_at) \
                 VALUES ($1, $2, $3, $4, $5) ON CONFLICT (owner, key) DO NOTHING"
            ))
            .bind::<Text, _>(owner)
            .bind::<Text, _>(&key.key)
            .bind::<Text, _>(&key.request_hash)
            .bind::<Nullable<Uuid>, _>(resource)
            .bind::<Timestamptz, _>(now),
        )
        .execute(conn)
        .await?;
        if inserted == 1 {
            return Ok(Claim::New);
        }
        let row: KeyRow = crate::db::Prepared(
            diesel::sql_query(format!(
                "SELECT request_hash, resource_id, response_body, created_at FROM {table} \
                 WHERE owner = $1 AND key = $2 FOR UPDATE"
            ))
            .bind::<Text, _>(owner)
            .bind::<Text, _>(&key.key),
        )
        .get_result(conn)
        .await?;
        if row.created_at < now - policy.ttl {
            crate::db::Prepared(
                diesel::sql_query(format!(
                    "UPDATE {table} SET request_hash = $3, resource_id = $4, created_at = $5, \
                     response_status = NULL, response_body = NULL WHERE owner = $1 AND key = $2"
                ))
                .bind::<Text, _>(owner)
                .bind::<Text, _>(&key.key)
                .bind::<Text, _>(&key.request_hash)
                .bind::<Nullable<Uuid>, _>(resource)
                .bind::<Timestamptz, _>(now),
            )
            .execute(conn)
            .await?;
            return Ok(Claim::New);
        }
        if row.request_hash != key.request_hash {
            return Ok(Claim::Mismatch);
        }
        if let Some(body) = row.response_body {
            return Ok(Claim::Done { body });
        }
        if row.created_at < now - policy.stale_after {
            crate::db::Prepared(
                diesel::sql_query(format!(
                    "UPDATE {table} SET created_at = $3 WHERE owner = $1 AND key = $2"
                ))
                .bind::<Text, _>(owner)
                .bind::<Text, _>(&key.key)
                .bind::<Timestamptz, _>(now),
            )
            .execute(conn)
            .await?;
            return Ok(Claim::Abandoned {
                resource: row.resource_id,
            });
        }
        Ok(Claim::InFlight)
    }

    /// Points a claimed key at what its request starts (a taken-over key
    /// whose first request started nothing).
    pub async fn set_resource(
        self,
        conn: &mut diesel_async::AsyncPgConnection,
        owner: &str,
        key: &str,
        resource: uuid::Uuid,
    ) -> diesel::QueryResult<()> {
        use diesel::sql_types::{Text, Uuid};
        use diesel_async::RunQueryDsl;
        crate::db::Prepared(
            diesel::sql_query(format!(
                "UPDATE {} SET resource_id = $3 WHERE owner = $1 AND key = $2",
                self.0
            ))
            .bind::<Text, _>(owner)
            .bind::<Text, _>(key)
            .bind::<Uuid, _>(resource),
        )
        .execute(conn)
        .await?;
        Ok(())
    }

    /// Stores the answer under a claimed key, in the transaction of the work
    /// it answers (a shared connection, so it can join a pipelined batch).
    pub async fn store_response(
        self,
        conn: &diesel_async::AsyncPgConnection,
        owner: &str,
        key: &str,
        body: &[u8],
    ) -> diesel::QueryResult<usize> {
        use diesel::sql_types::{Bytea, SmallInt, Text};
        use diesel_async::RunQueryDsl;
        crate::db::Prepared(
            diesel::sql_query(format!(
                "UPDATE {} SET response_status = $3, response_body = $4 \
                 WHERE owner = $1 AND key = $2",
                self.0
            ))
            .bind::<Text, _>(owner)
            .bind::<Text, _>(key)
            .bind::<SmallInt, _>(CREATED)
            .bind::<Bytea, _>(body),
        )
        .execute(&mut &*conn)
        .await
    }

    /// Frees a claimed key whose request failed before answering, so that
    /// nothing but the failure remains and a retry runs afresh.
    pub async fn release(
        self,
        conn: &mut diesel_async::AsyncPgConnection,
        owner: &str,
        key: &str,
    ) -> diesel::QueryResult<()> {
        use diesel::sql_types::Text;
        use diesel_async::RunQueryDsl;
        crate::db::Prepared(
            diesel::sql_query(format!(
                "DELETE FROM {} WHERE owner = $1 AND key = $2 AND response_status IS NULL",
                self.0
            ))
            .bind::<Text, _>(owner)
            .bind::<Text, _>(key),
        )
        .execute(conn)
        .await?;
        Ok(())
    }

    /// Forgets keys created before `before`; returns how many.
    pub async fn sweep(
        self,
        conn: &mut diesel_async::AsyncPgConnection,
        before: time::OffsetDateTime,
    ) -> diesel::QueryResult<usize> {
        use diesel_async::RunQueryDsl;
        diesel::sql_query(format!("DELETE FROM {} WHERE created_at < $1", self.0))
            .bind::<diesel::sql_types::Timestamptz, _>(before)
            .execute(conn)
            .await
    }
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
