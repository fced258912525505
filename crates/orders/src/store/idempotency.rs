//! `orders.idempotency_keys`: a caller's key, the fingerprint of the request
//! that claimed it, and the answer stored under it.

use diesel::prelude::*;
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use platform::db::Prepared;
use time::OffsetDateTime;

use super::StoreError;
use super::schema::idempotency_keys;

/// The status of every answer stored here: only requests that create
/// something (an order, a line) take keys, and their answer is `201 Created`.
const CREATED: i16 = 201;

/// The answer to store under a reserved Idempotency-Key.
#[derive(Debug, Clone, Copy)]
pub struct StoredResponse<'a> {
    pub owner: &'a str,
    pub key: &'a str,
    pub body: &'a [u8],
}

/// What an Idempotency-Key holds.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = idempotency_keys)]
struct KeyRecord {
    request_hash: String,
    response_status: Option<i16>,
    response_body: Option<Vec<u8>>,
    created_at: OffsetDateTime,
}

/// What claiming an Idempotency-Key found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyClaim {
    /// This request holds the key now: do the work, then store its answer
    /// (or release the key if it fails).
    New,
    /// The same request completed before: its answer.
    Done { body: Vec<u8> },
    /// The same request is still running.
    InFlight,
    /// The key was used for another request.
    Mismatch,
}

/// Forgets keys created before `before`; returns how many.
pub async fn sweep_keys(
    conn: &mut AsyncPgConnection,
    before: OffsetDateTime,
) -> Result<usize, StoreError> {
    Ok(
        diesel::delete(idempotency_keys::table.filter(idempotency_keys::created_at.lt(before)))
            .execute(conn)
            .await?,
    )
}

/// Claims `owner`'s `key` for a request with fingerprint `request_hash`, or
/// reports what it holds. A key older than `ttl` counts as new; one whose
/// request has been in flight longer than `stale_after` (its process died)
/// is taken over.
pub async fn claim_key(
    conn: &mut AsyncPgConnection,
    owner: &str,
    key: &str,
    request_hash: &str,
    now: OffsetDateTime,
    ttl: time::Duration,
    stale_after: time::Duration,
) -> Result<KeyClaim, StoreError> {
    conn.transaction(async |conn| {
        let inserted = diesel::insert_into(idempotency_keys::table)
            .values((
                idempotency_keys::owner.eq(owner),
                idempotency_keys::key.eq(key),
                idempotency_keys::request_hash.eq(request_hash),
                idempotency_keys::created_at.eq(now),
            ))
            .on_conflict_do_nothing()
            .execute(conn)
            .await?;
        if inserted == 1 {
            return Ok(KeyClaim::New);
        }
        let record: KeyRecord = idempotency_keys::table
            .find((owner, key))
            .select(KeyRecord::as_select())
            .for_update()
            .first(conn)
            .await?;
        let expired = record.created_at < now - ttl;
        if !expired && record.request_hash != request_hash {
            return Ok(KeyClaim::Mismatch);
        }
        if let (false, Some(_), Some(body)) =
            (expired, record.response_status, record.response_body)
        {
            return Ok(KeyClaim::Done { body });
        }
        if expired || record.created_at < now - stale_after {
            Prepared(
                diesel::update(idempotency_keys::table.find((owner, key))).set((
                    idempotency_keys::request_hash.eq(request_hash),
                    idempotency_keys::response_status.eq(None::<i16>),
                    idempotency_keys::response_body.eq(None::<Vec<u8>>),
                    idempotency_keys::created_at.eq(now),
                )),
            )
            .execute(conn)
            .await?;
            return Ok(KeyClaim::New);
        }
        Ok(KeyClaim::InFlight)
    })
    .await
}

/// Releases a claimed key whose request failed, so that nothing but the
/// failure remains and a retry runs afresh.
pub async fn release_key(
    conn: &mut AsyncPgConnection,
    owner: &str,
    key: &str,
) -> Result<(), StoreError> {
    diesel::delete(
        idempotency_keys::table
            .find((owner, key))
            .filter(idempotency_keys::response_status.is_null()),
    )
    .execute(conn)
    .await?;
    Ok(())
}

/// Stores the answer under a claimed key (part of the write it answers).
pub(super) async fn store_response(
    conn: &AsyncPgConnection,
    stored: &StoredResponse<'_>,
) -> diesel::QueryResult<usize> {
    Prepared(
        diesel::update(idempotency_keys::table.find((stored.owner, stored.key))).set((
            idempotency_keys::response_status.eq(CREATED),
            idempotency_keys::response_body.eq(stored.body),
        )),
    )
    .execute(&mut &*conn)
    .await
}
