//! `payments.idempotency_keys`, claimed through the platform's one
//! Idempotency-Key claim ([`platform::idempotency::KeyTable`]); a key's
//! `resource_id` is the payment its request started.

use diesel_async::AsyncPgConnection;
use platform::idempotency::KeyTable;

use super::StoreError;

/// Payments' table of Idempotency-Keys.
pub const KEYS: KeyTable = KeyTable("payments.idempotency_keys");

/// Stores the response of a keyed request (without a key: nothing).
pub async fn store_response(
    conn: &AsyncPgConnection,
    key: Option<(&str, &str)>,
    body: &[u8],
) -> Result<(), StoreError> {
    let Some((owner, key)) = key else {
        return Ok(());
    };
    KEYS.store_response(conn, owner, key, body).await?;
    Ok(())
}
