//! Persistence: the event store and the projections, as free async functions
//! over a connection (the caller owns the transaction).
//!
//! Writing an order is one transaction: its new events are appended to
//! `orders.events` and the projections (`orders`, `order_items`,
//! `order_addresses`) are brought up to date. The statements are *pipelined*:
//! sent together and answered together, so the whole write costs three round
//! trips (BEGIN, the batch, COMMIT) however many rows it touches.
//!
//! Row types are separate from domain types and re-parsed on read.

mod numbers;
mod rows;
pub mod schema;

use anyhow::Context;
use diesel::{
    prelude::*,
    result::{DatabaseErrorKind, Error as DieselError},
};
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use futures_util::future::{try_join, try_join_all};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::domain::{Order, OrderEvent, OrderId, OrderNumber, OrderStatus, Recorded, UserId};
pub use numbers::OrderNumbers;
use platform::jobs::NewJob;
use rows::{AddressRow, EventRow, ItemRow, NewEventRow, OrderChangeRow, OrderRow};
use schema::{events, idempotency_keys, inbox, order_addresses, order_items, orders};

/// The jobs table of schema `orders` (see [`platform::jobs`]).
pub const JOBS: &str = "orders.jobs";

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// Another writer appended to the order first; reload and retry.
    #[error("the order was changed concurrently")]
    Conflict,
    /// The consumed event was already recorded in the inbox.
    #[error("the event was consumed before")]
    Duplicate,
    /// The user holds the coupon as often as its limit allows.
    #[error("the coupon's per-user limit is reached")]
    CouponLimit,
    #[error(transparent)]
    Unexpected(#[from] anyhow::Error),
}

impl From<DieselError> for StoreError {
    fn from(error: DieselError) -> Self {
        match &error {
            DieselError::DatabaseError(DatabaseErrorKind::UniqueViolation, info)
                if info.constraint_name() == Some("events_order_sequence_key") =>
            {
                StoreError::Conflict
            }
            DieselError::DatabaseError(DatabaseErrorKind::UniqueViolation, info)
                if info.constraint_name() == Some("inbox_pkey") =>
            {
                StoreError::Duplicate
            }
            _ => StoreError::Unexpected(anyhow::Error::new(error).context("database error")),
        }
    }
}

/// An event about to be appended, with what the store records beside it.
#[derive(Debug)]
pub struct NewEvent<'a> {
    pub id: Uuid,
    pub recorded: &'a Recorded,
    /// The public order state after this event (the published data).
    pub snapshot: serde_json::Value,
}

/// Who and which trace caused a write, and what else it commits.
#[derive(Debug, Clone, Copy, Default)]
pub struct WriteContext<'a> {
    pub actor: Option<&'a str>,
    pub traceparent: Option<&'a str>,
    /// The consumed event (id, type) that caused the write, for the inbox.
    pub consumed: Option<(Uuid, &'a str)>,
    /// Work the write decides (a charge, a stock release, a refund),
    /// committed with it.
    pub jobs: &'a [NewJob],
    /// The Idempotency-Key of the request and the response it answers.
    pub idempotency: Option<StoredResponse<'a>>,
    /// A new order's coupon use, refused beyond the user's limit.
    pub coupon_use: Option<CouponUse<'a>>,
}

/// One use of a coupon by a user, taken when an order is placed with it.
#[derive(Debug, Clone, Copy)]
pub struct CouponUse<'a> {
    pub code: &'a str,
    pub user_id: &'a str,
    /// Uses one user may hold at once; None: unlimited (still counted).
    pub limit: Option<u32>,
}

/// The response to store under a reserved Idempotency-Key.
#[derive(Debug, Clone, Copy)]
pub struct StoredResponse<'a> {
    pub owner: &'a str,
    pub key: &'a str,
    pub status: u16,
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
    Done { status: u16, body: Vec<u8> },
    /// The same request is still running.
    InFlight,
    /// The key was used for another request.
    Mismatch,
}

/// Appends `new_events` and updates the projections to `order` (the state
/// after them), atomically. `previous_version` is the version the events were
/// decided on (`None` for a new order): if another writer got there first the
/// result is [`StoreError::Conflict`] and nothing is written.
pub async fn save(
    conn: &mut AsyncPgConnection,
    order: &Order,
    new_events: &[NewEvent<'_>],
    context: WriteContext<'_>,
    previous_version: Option<u32>,
) -> Result<(), StoreError> {
    let event_rows = new_events
        .iter()
        .map(|event| NewEventRow::new(event, context))
        .collect::<Result<Vec<_>, _>>()?;
    let new_order = previous_version.is_none().then(|| {
        (
            OrderRow::from_order(order),
            ItemRow::from_order(order),
            AddressRow::from_order(order),
        )
    });
    let change = OrderChangeRow::from_order(order);
    // Item events rewrite the order's lines (a handful of rows).
    let items_changed = new_events.iter().any(|event| {
        matches!(
            event.recorded.event,
            OrderEvent::ItemAdded(_) | OrderEvent::ItemChanged(_) | OrderEvent::ItemRemoved(_)
        )
    });
    let item_rows =
        (previous_version.is_some() && items_changed).then(|| ItemRow::from_order(order));
    let previous_version = previous_version
        .map(i32::try_from)
        .transpose()
        .context("version overflow")?;
    conn.transaction(async |conn| {
        let conn: &AsyncPgConnection = conn;
        // Every statement of the write goes out in one pipelined batch.
        let mut batch = Vec::with_capacity(6);
        match (&new_order, previous_version) {
            (Some((order_row, item_rows, address_rows)), _) => {
                batch.push(
                    diesel::insert_into(orders::table)
                        .values(order_row)
                        .execute(&mut &*conn),
                );
                batch.push(
                    diesel::insert_into(order_items::table)
                        .values(item_rows)
                        .execute(&mut &*conn),
                );
                batch.push(
                    diesel::insert_into(order_addresses::table)
                        .values(address_rows)
                        .execute(&mut &*conn),
                );
            }
            (None, Some(previous_version)) => {
                // Guarded by the version the change was decided on.
                batch.push(
                    diesel::update(orders::table)
                        .filter(orders::id.eq(order.id.0))
                        .filter(orders::version.eq(previous_version))
                        .set(&change)
                        .execute(&mut &*conn),
                );
                if let Some(item_rows) = &item_rows {
                    batch.push(
                        diesel::delete(
                            order_items::table.filter(order_items::order_id.eq(order.id.0)),
                        )
                        .execute(&mut &*conn),
                    );
                    batch.push(
                        diesel::insert_into(order_items::table)
                            .values(item_rows)
                            .execute(&mut &*conn),
                    );
                }
            }
            (None, None) => return Err(StoreError::Unexpected(anyhow::anyhow!("nothing to save"))),
        }
        batch.push(
            diesel::insert_into(events::table)
                .values(&event_rows)
                .execute(&mut &*conn),
        );
        for job in context.jobs {
            batch.push(Box::pin(async move {
                platform::jobs::enqueue(conn, JOBS, job)
                    .await
                    .map(usize::from)
            }));
        }
        if let Some(stored) = context.idempotency {
            batch.push(
                diesel::update(idempotency_keys::table.find((stored.owner, stored.key)))
                    .set((
                        idempotency_keys::response_status
                            .eq(i16::try_from(stored.status).unwrap_or(500)),
                        idempotency_keys::response_body.eq(stored.body),
                    ))
                    .execute(&mut &*conn),
            );
        }
        let mut coupon_taken_at = None;
        if let Some(coupon) = context.coupon_use {
            coupon_taken_at = Some(batch.len());
            batch.push(
                diesel::sql_query(
                    "INSERT INTO orders.coupon_uses AS u (code, user_id, uses) VALUES ($1, $2, 1) \
                     ON CONFLICT (code, user_id) DO UPDATE SET uses = u.uses + 1 WHERE u.uses < $3",
                )
                .bind::<diesel::sql_types::Text, _>(coupon.code)
                .bind::<diesel::sql_types::Text, _>(coupon.user_id)
                .bind::<diesel::sql_types::Integer, _>(
                    coupon
                        .limit
                        .map_or(i32::MAX, |limit| i32::try_from(limit).unwrap_or(i32::MAX)),
                )
                .execute(&mut &*conn),
            );
        }
        // A cancelled order gives its coupon use back.
        if let Some(coupon) = &order.charges.coupon
            && new_events
                .iter()
                .any(|event| matches!(event.recorded.event, OrderEvent::Cancelled(_)))
        {
            batch.push(
                diesel::sql_query(
                    "UPDATE orders.coupon_uses SET uses = uses - 1 \
                     WHERE code = $1 AND user_id = $2 AND uses > 0",
                )
                .bind::<diesel::sql_types::Text, _>(coupon.code.as_str())
                .bind::<diesel::sql_types::Text, _>(order.user_id.as_str())
                .execute(&mut &*conn),
            );
        }
        if let Some((event_id, event_type)) = context.consumed {
            batch.push(
                diesel::insert_into(inbox::table)
                    .values((
                        inbox::event_id.eq(event_id),
                        inbox::event_type.eq(event_type),
                    ))
                    .execute(&mut &*conn),
            );
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
        if let (false, Some(status), Some(body)) =
            (expired, record.response_status, record.response_body)
        {
            return Ok(KeyClaim::Done {
                status: u16::try_from(status).unwrap_or(201),
                body,
            });
        }
        if expired || record.created_at < now - stale_after {
            diesel::update(idempotency_keys::table.find((owner, key)))
                .set((
                    idempotency_keys::request_hash.eq(request_hash),
                    idempotency_keys::response_status.eq(None::<i16>),
                    idempotency_keys::response_body.eq(None::<Vec<u8>>),
                    idempotency_keys::created_at.eq(now),
                ))
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

/// Records a consumed event that changed nothing; `false` if it was
/// consumed before.
pub async fn record_consumed(
    conn: &mut AsyncPgConnection,
    event_id: Uuid,
    event_type: &str,
) -> Result<bool, StoreError> {
    let inserted = diesel::insert_into(inbox::table)
        .values((
            inbox::event_id.eq(event_id),
            inbox::event_type.eq(event_type),
        ))
        .on_conflict_do_nothing()
        .execute(conn)
        .await?;
    Ok(inserted == 1)
}

/// The order's full history, oldest first (empty if there is no such order).
pub async fn load_history(
    conn: &mut AsyncPgConnection,
    id: OrderId,
) -> Result<Vec<Recorded>, StoreError> {
    let rows: Vec<EventRow> = events::table
        .filter(events::order_id.eq(id.0))
        .order(events::sequence.asc())
        .select(EventRow::as_select())
        .load(conn)
        .await?;
    rows.into_iter()
        .map(|row| row.into_recorded().map_err(StoreError::from))
        .collect()
}

/// Rebuilds an order from its events, or `None` if it has none.
pub async fn load_order(
    conn: &mut AsyncPgConnection,
    id: OrderId,
) -> Result<Option<Order>, StoreError> {
    let history = load_history(conn, id).await?;
    if history.is_empty() {
        return Ok(None);
    }
    Order::replay(&history)
        .map(Some)
        .with_context(|| format!("replaying order {id}"))
        .map_err(StoreError::from)
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
    id: OrderId,
    after: u32,
    limit: u32,
) -> Result<Vec<HistoryEntry>, StoreError> {
    let rows: Vec<EventRow> = events::table
        .filter(events::order_id.eq(id.0))
        .filter(events::sequence.gt(i32::try_from(after).unwrap_or(i32::MAX)))
        .order(events::sequence.asc())
        .limit(i64::from(limit))
        .select(EventRow::as_select())
        .load(conn)
        .await?;
    rows.into_iter()
        .map(|row| {
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

/// Reads an order from the projections (one pipelined round trip).
pub async fn find_order(
    conn: &mut AsyncPgConnection,
    id: OrderId,
) -> Result<Option<Order>, StoreError> {
    let conn: &AsyncPgConnection = conn;
    let result = try_join(
        orders::table
            .find(id.0)
            .select(OrderRow::as_select())
            .first::<OrderRow>(&mut &*conn),
        try_join(
            order_items::table
                .filter(order_items::order_id.eq(id.0))
                .order(order_items::line.asc())
                .select(ItemRow::as_select())
                .load::<ItemRow>(&mut &*conn),
            order_addresses::table
                .filter(order_addresses::order_id.eq(id.0))
                .select(AddressRow::as_select())
                .load::<AddressRow>(&mut &*conn),
        ),
    )
    .await;
    match result {
        Ok((order, (items, addresses))) => Ok(Some(rows::into_order(order, items, addresses)?)),
        Err(DieselError::NotFound) => Ok(None),
        Err(error) => Err(error.into()),
    }
}

/// Pending orders placed before `before`, oldest first (the unpaid sweep).
pub async fn pending_placed_before(
    conn: &mut AsyncPgConnection,
    before: OffsetDateTime,
    limit: i64,
) -> Result<Vec<OrderId>, StoreError> {
    let ids: Vec<Uuid> = orders::table
        .filter(orders::status.eq(OrderStatus::Pending.as_str()))
        .filter(orders::created_at.lt(before))
        .order(orders::created_at.asc())
        .limit(limit)
        .select(orders::id)
        .load(conn)
        .await?;
    Ok(ids.into_iter().map(OrderId).collect())
}

/// The id of the order with this number, if any.
pub async fn find_id_by_number(
    conn: &mut AsyncPgConnection,
    number: &OrderNumber,
) -> Result<Option<OrderId>, StoreError> {
    let id = orders::table
        .filter(orders::order_number.eq(number.as_str()))
        .select(orders::id)
        .first::<Uuid>(conn)
        .await
        .optional()?;
    Ok(id.map(OrderId))
}

/// Which orders to list.
#[derive(Debug, Clone)]
pub struct ListFilter {
    pub user_id: Option<UserId>,
    pub status: Option<OrderStatus>,
    pub limit: u32,
    pub offset: u32,
}

/// A page of orders, newest first, and how many match in all.
pub async fn list_orders(
    conn: &mut AsyncPgConnection,
    filter: &ListFilter,
) -> Result<(Vec<Order>, u64), StoreError> {
    let filtered = || {
        let mut query = orders::table.into_boxed();
        if let Some(user_id) = &filter.user_id {
            query = query.filter(orders::user_id.eq(user_id.as_str().to_owned()));
        }
        if let Some(status) = filter.status {
            query = query.filter(orders::status.eq(status.as_str()));
        }
        query
    };
    let conn: &AsyncPgConnection = conn;
    let (page, total) = try_join(
        filtered()
            .order((orders::created_at.desc(), orders::id.desc()))
            .limit(i64::from(filter.limit))
            .offset(i64::from(filter.offset))
            .select(OrderRow::as_select())
            .load::<OrderRow>(&mut &*conn),
        filtered().count().get_result::<i64>(&mut &*conn),
    )
    .await?;
    let ids: Vec<Uuid> = page.iter().map(|row| row.id).collect();
    let (items, addresses) = try_join(
        order_items::table
            .filter(order_items::order_id.eq_any(&ids))
            .order((order_items::order_id, order_items::line.asc()))
            .select(ItemRow::as_select())
            .load::<ItemRow>(&mut &*conn),
        order_addresses::table
            .filter(order_addresses::order_id.eq_any(&ids))
            .select(AddressRow::as_select())
            .load::<AddressRow>(&mut &*conn),
    )
    .await?;
    let orders = rows::assemble(page, items, addresses)?;
    Ok((orders, u64::try_from(total).unwrap_or_default()))
}

/// Decodes a stored event (used by the history and by replay).
fn decode(row: &EventRow) -> anyhow::Result<OrderEvent> {
    let version = u16::try_from(row.event_version).context("negative event version")?;
    OrderEvent::decode(&row.event_type, version, row.payload.clone())
        .with_context(|| format!("decoding event {}", row.id))
}
