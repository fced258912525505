//! `orders.events`: the event store, which is also the outbox.
//!
//! Writing an order is one transaction: its new events are appended and the
//! projections (`orders`, `order_items`) are brought up to
//! date, with whatever else the change decides ([`Also`]). The statements
//! are *pipelined*: sent together and answered together, so the whole write
//! costs three round trips (BEGIN, the batch, COMMIT) however many rows it
//! touches.

use anyhow::Context;
use diesel::prelude::*;
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use futures_util::future::{BoxFuture, try_join_all};
use platform::db::Prepared;
use platform::jobs::NewJob;
use platform::privacy::{DataKey, KeyRing};
use platform::relay::OutboxSource;
use time::OffsetDateTime;
use uuid::Uuid;

use super::coupons::{self, CouponUse};
use super::idempotency::{self, StoredResponse};
pub use super::rows::{Cause, NewEvent};
use super::rows::{EventRow, ItemRow, NewEventRow, OrderChangeRow, OrderRow};
use super::schema::{events, order_items, orders};
use super::{INBOX, JOBS, StoreError, keys, sealed::Sealer};
use crate::domain::{Order, OrderEvent, OrderId, Recorded};

/// The outbox the shared relay publishes: the event store itself, each
/// event with the public order state after it (`snapshot`).
pub const OUTBOX: OutboxSource = OutboxSource {
    table: "orders.events",
    name: "orders",
    notify_channel: "orders_outbox",
    subject: "order_id::text",
    sequence: "sequence",
    data: "snapshot::text",
    source: contracts::order::SOURCE,
    data_schema: schema_of,
};

fn schema_of(event_type: &str) -> Option<String> {
    contracts::order::OrderEventType::parse(event_type)
        .map(contracts::order::OrderEventType::data_schema)
}

/// What a change commits besides its events, in the same transaction.
#[derive(Debug, Clone, Copy)]
pub enum Also<'a> {
    /// Work the change decides (a charge, a stock release, a refund).
    Job(&'a NewJob),
    /// The answer to store under the request's `Idempotency-Key`.
    Answer(StoredResponse<'a>),
    /// A new order's coupon use, refused beyond the user's limit
    /// ([`StoreError::CouponLimit`]).
    CouponUse(CouponUse<'a>),
    /// The consumed event that caused the change (the inbox); one consumed
    /// before is [`StoreError::Duplicate`].
    Consumed { event_id: Uuid, event_type: &'a str },
}

/// Appends `new_events` and updates the projections to `order` (the state
/// after them), atomically. `previous_version` is the version the events were
/// decided on (`None` for a new order): if another writer got there first the
/// result is [`StoreError::Conflict`] and nothing is written.
pub async fn append(
    conn: &mut AsyncPgConnection,
    order: &Order,
    new_events: &[NewEvent<'_>],
    cause: Cause<'_>,
    also: &[Also<'_>],
    previous_version: Option<u32>,
    sealer: Sealer<'_>,
) -> Result<(), StoreError> {
    let event_rows = new_events
        .iter()
        .map(|event| NewEventRow::new(event, cause, sealer))
        .collect::<Result<Vec<_>, _>>()?;
    let new_order = previous_version
        .is_none()
        .then(|| (OrderRow::from_order(order), ItemRow::from_order(order)));
    let change = OrderChangeRow::from_order(order);
    // Item events rewrite the order's lines (a handful of rows).
    let items_changed = new_events
        .iter()
        .any(|event| event.recorded.event.changes_items());
    let item_rows =
        (previous_version.is_some() && items_changed).then(|| ItemRow::from_order(order));
    let previous_version = previous_version
        .map(i32::try_from)
        .transpose()
        .context("version overflow")?;
    conn.transaction(async |conn| {
        let conn: &AsyncPgConnection = conn;
        // Every statement of the write goes out in one pipelined batch.
        let mut batch: Vec<BoxFuture<'_, diesel::QueryResult<usize>>> = Vec::with_capacity(8);
        match (&new_order, previous_version) {
            (Some((order_row, item_rows)), _) => {
                batch.push(Box::pin(
                    Prepared(diesel::insert_into(orders::table).values(order_row))
                        .execute(&mut &*conn),
                ));
                batch.push(Box::pin(
                    Prepared(diesel::insert_into(order_items::table).values(item_rows))
                        .execute(&mut &*conn),
                ));
            }
            (None, Some(previous_version)) => {
                // Guarded by the version the change was decided on.
                batch.push(Box::pin(
                    Prepared(
                        diesel::update(orders::table)
                            .filter(orders::id.eq(order.id.0))
                            .filter(orders::version.eq(previous_version))
                            .set(&change),
                    )
                    .execute(&mut &*conn),
                ));
                if let Some(item_rows) = &item_rows {
                    batch.push(Box::pin(
                        diesel::delete(
                            order_items::table.filter(order_items::order_id.eq(order.id.0)),
                        )
                        .execute(&mut &*conn),
                    ));
                    batch.push(Box::pin(
                        Prepared(diesel::insert_into(order_items::table).values(item_rows))
                            .execute(&mut &*conn),
                    ));
                }
            }
            (None, None) => return Err(StoreError::Unexpected(anyhow::anyhow!("nothing to save"))),
        }
        batch.push(Box::pin(
            Prepared(diesel::insert_into(events::table).values(&event_rows)).execute(&mut &*conn),
        ));
        let mut coupon_taken_at = None;
        for write in also {
            batch.push(match write {
                Also::Job(job) => Box::pin(async move {
                    platform::jobs::enqueue(conn, JOBS, job)
                        .await
                        .map(usize::from)
                }),
                Also::Answer(stored) => Box::pin(idempotency::store_response(conn, stored)),
                Also::CouponUse(taken) => {
                    coupon_taken_at = Some(batch.len());
                    Box::pin(coupons::take(conn, taken))
                }
                Also::Consumed {
                    event_id,
                    event_type,
                } => Box::pin(platform::inbox::insert(conn, INBOX, *event_id, event_type)),
            });
        }
        // A cancelled order gives its coupon use back.
        if let Some(coupon) = &order.charges.coupon
            && new_events
                .iter()
                .any(|event| matches!(event.recorded.event, OrderEvent::Cancelled(_)))
        {
            batch.push(Box::pin(coupons::give_back(
                conn,
                coupon.code.as_str(),
                order.user_id.as_str(),
            )));
        }
        let affected = try_join_all(batch).await?;
        if previous_version.is_some() && <[usize]>::first(&affected) != Some(&1) {
            return Err(StoreError::Conflict);
        }
        if coupon_taken_at.is_some_and(|at| affected.get(at) == Some(&0)) {
            return Err(StoreError::CouponLimit);
        }
        Ok(())
    })
    .await
}

/// An order's event rows from `after` on (at most `limit`), and, with a
/// `ring`, its owner's data key (none if erased, or if the order has none):
/// two statements in one round trip.
async fn rows_and_key(
    conn: &mut AsyncPgConnection,
    ring: Option<&KeyRing>,
    id: OrderId,
    after: u32,
    limit: i64,
) -> Result<(Vec<EventRow>, Option<DataKey>), StoreError> {
    let conn: &AsyncPgConnection = conn;
    let rows = events::table
        .filter(events::order_id.eq(id.0))
        .filter(events::sequence.gt(i32::try_from(after).unwrap_or(i32::MAX)))
        .order(events::sequence.asc())
        .limit(limit)
        .select(EventRow::as_select())
        .load::<EventRow>(&mut &*conn);
    let Some(ring) = ring else {
        return Ok((rows.await?, None));
    };
    let key =
        Prepared(diesel::sql_query(keys::KEY_OF_ORDER).bind::<diesel::sql_types::Uuid, _>(id.0))
            .get_result::<keys::KeyRow>(&mut &*conn);
    let (rows, key) = futures_util::future::join(rows, key).await;
    let key = key.optional()?.map(|row| row.unwrap(ring)).transpose()?;
    Ok((rows?, key))
}

/// The order's full history, oldest first (empty if there is no such
/// order), with its owner's data key (to seal what a change adds).
async fn load_history(
    conn: &mut AsyncPgConnection,
    ring: Option<&KeyRing>,
    id: OrderId,
) -> Result<(Vec<Recorded>, Option<DataKey>), StoreError> {
    let (rows, key) = rows_and_key(conn, ring, id, 0, i64::MAX).await?;
    let history = rows
        .into_iter()
        .map(|row| row.into_recorded(key.as_ref()).map_err(StoreError::from))
        .collect::<Result<_, _>>()?;
    Ok((history, key))
}

/// Rebuilds an order from its events, or `None` if it has none; with its
/// owner's data key.
pub async fn load_order(
    conn: &mut AsyncPgConnection,
    ring: &KeyRing,
    id: OrderId,
) -> Result<Option<(Order, Option<DataKey>)>, StoreError> {
    replay(conn, Some(ring), id).await
}

/// Rebuilds an order from its events without opening their personal
/// fields (the read model holds none), or `None` if it has none.
pub async fn load_order_impersonal(
    conn: &mut AsyncPgConnection,
    id: OrderId,
) -> Result<Option<Order>, StoreError> {
    Ok(replay(conn, None, id).await?.map(|(order, _)| order))
}

async fn replay(
    conn: &mut AsyncPgConnection,
    ring: Option<&KeyRing>,
    id: OrderId,
) -> Result<Option<(Order, Option<DataKey>)>, StoreError> {
    let (history, key) = load_history(conn, ring, id).await?;
    if history.is_empty() {
        return Ok(None);
    }
    let order = Order::replay(&history)
        .with_context(|| format!("replaying order {id}"))
        .map_err(StoreError::from)?;
    Ok(Some((order, key)))
}

/// One entry of an order's audit trail.
#[derive(Debug, Clone)]
pub struct HistoryEntry {
    pub id: Uuid,
    pub sequence: u32,
    pub event_type: String,
    pub occurred_at: OffsetDateTime,
    pub actor: Option<String>,
    pub payload: serde_json::Value,
}

/// The audit trail of an order, oldest first.
pub async fn history_entries(
    conn: &mut AsyncPgConnection,
    ring: &KeyRing,
    id: OrderId,
    after: u32,
    limit: u32,
) -> Result<Vec<HistoryEntry>, StoreError> {
    let (rows, key) = rows_and_key(conn, Some(ring), id, after, i64::from(limit)).await?;
    rows.into_iter()
        .map(|mut row| {
            row.open(key.as_ref())?;
            Ok(HistoryEntry {
                id: row.id,
                sequence: u32::try_from(row.sequence).context("negative sequence")?,
                event_type: row.event_type,
                occurred_at: row.occurred_at,
                actor: row.actor,
                payload: row.payload,
            })
        })
        .collect()
}
