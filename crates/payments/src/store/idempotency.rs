//! `payments.idempotency_keys`: a caller's key, the fingerprint of the
//! request that claimed it, the payment it started and the answer stored
//! under it.

use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use platform::db::Prepared;
use time::OffsetDateTime;
use uuid::Uuid;

use super::StoreError;
use super::schema::idempotency_keys;

/// The status of every answer stored here: only payment creation takes
/// keys, and its answer is `201 Created`.
const CREATED: i16 = 201;

/// What an `Idempotency-Key` already holds.
#[derive(Debug)]
pub enum KeyState {
    /// First use: this request owns the key now.
    New,
    /// Finished before: replay this response.
    Done { body: Vec<u8> },
    /// Another request with this key is still running.
    InFlight,
    /// The first request seems to have died mid-way; this one takes over the
    /// payment it started (if it got that far).
    Abandoned { payment_id: Option<Uuid> },
    /// The key was used with a different body.
    Mismatch,
}

#[derive(Debug, Queryable, Selectable)]
#[diesel(table_name = idempotency_keys)]
struct KeyRow {
    request_hash: String,
    payment_id: Option<Uuid>,
    response_status: Option<i16>,
    response_body: Option<Vec<u8>>,
    created_at: OffsetDateTime,
}

/// Claims `key` for `owner` (for the payment `payment_id` about to be
/// created) or reports what it already holds. A key older than `ttl` that the
/// sweeper has not removed yet counts as new.
#[allow(clippy::too_many_arguments)]
pub async fn claim_key(
    conn: &mut AsyncPgConnection,
    owner: &str,
    key: &str,
    request_hash: &str,
    payment_id: Uuid,
    now: OffsetDateTime,
    ttl: time::Duration,
    stale_after: time::Duration,
) -> Result<KeyState, StoreError> {
    let new_key = (
        idempotency_keys::owner.eq(owner),
        idempotency_keys::key.eq(key),
        idempotency_keys::request_hash.eq(request_hash),
        idempotency_keys::payment_id.eq(payment_id),
        idempotency_keys::created_at.eq(now),
    );
    let inserted = diesel::insert_into(idempotency_keys::table)
        .values(new_key)
        .on_conflict_do_nothing()
        .execute(conn)
        .await?;
    if inserted == 1 {
        return Ok(KeyState::New);
    }
    let row: KeyRow = idempotency_keys::table
        .find((owner, key))
        .select(KeyRow::as_select())
        .for_update()
        .first(conn)
        .await?;
    if row.created_at < now - ttl {
        diesel::delete(idempotency_keys::table.find((owner, key)))
            .execute(conn)
            .await?;
        diesel::insert_into(idempotency_keys::table)
            .values(new_key)
            .execute(conn)
            .await?;
        return Ok(KeyState::New);
    }
    if row.request_hash != request_hash {
        return Ok(KeyState::Mismatch);
    }
    if let (Some(_), Some(body)) = (row.response_status, row.response_body) {
        return Ok(KeyState::Done { body });
    }
    if row.created_at < now - stale_after {
        Prepared(
            diesel::update(idempotency_keys::table.find((owner, key)))
                .set(idempotency_keys::created_at.eq(now)),
        )
        .execute(conn)
        .await?;
        return Ok(KeyState::Abandoned {
            payment_id: row.payment_id,
        });
    }
    Ok(KeyState::InFlight)
}

/// Stores the response of a keyed request (without a key: nothing).
pub async fn store_response(
    conn: &AsyncPgConnection,
    key: Option<(&str, &str)>,
    body: &[u8],
) -> Result<(), StoreError> {
    let Some((owner, key)) = key else {
        return Ok(());
    };
    Prepared(
        diesel::update(idempotency_keys::table.find((owner, key))).set((
            idempotency_keys::response_status.eq(CREATED),
            idempotency_keys::response_body.eq(body),
        )),
    )
    .execute(&mut &*conn)
    .await?;
    Ok(())
}

/// Points a taken-over key at the payment its new request starts.
pub async fn set_key_payment(
    conn: &mut AsyncPgConnection,
    owner: &str,
    key: &str,
    payment_id: Uuid,
) -> Result<(), StoreError> {
    Prepared(
        diesel::update(idempotency_keys::table.find((owner, key)))
            .set(idempotency_keys::payment_id.eq(payment_id)),
    )
    .execute(conn)
    .await?;
    Ok(())
}

/// Deletes keys older than `ttl`; returns how many.
pub async fn sweep_keys(
    conn: &mut AsyncPgConnection,
    now: OffsetDateTime,
    ttl: time::Duration,
) -> Result<usize, StoreError> {
    Ok(
        diesel::delete(idempotency_keys::table.filter(idempotency_keys::created_at.lt(now - ttl)))
            .execute(conn)
            .await?,
    )
}
