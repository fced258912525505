//! `orders.idempotency_keys`, claimed through the platform's one
//! Idempotency-Key claim ([`platform::idempotency::KeyTable`]).

use platform::idempotency::KeyTable;

/// Orders' table of Idempotency-Keys.
pub const KEYS: KeyTable = KeyTable("orders.idempotency_keys");

/// The answer to store under a reserved Idempotency-Key.
#[derive(Debug, Clone, Copy)]
pub struct StoredResponse<'a> {
    pub owner: &'a str,
    pub key: &'a str,
    pub body: &'a [u8],
}

/// Stores the answer under a claimed key (part of the write it answers).
pub(super) async fn store_response(
    conn: &diesel_async::AsyncPgConnection,
    stored: &StoredResponse<'_>,
) -> diesel::QueryResult<usize> {
    KEYS.store_response(conn, stored.owner, stored.key, stored.body)
        .await
}
