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
use futures_util::future::try_join;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::domain::{Order, OrderEvent, OrderId, OrderNumber, OrderStatus, Recorded, UserId};
pub use numbers::OrderNumbers;
use rows::{AddressRow, EventRow, ItemRow, NewEventRow, OrderRow, StatusChangeRow};
use schema::{events, order_addresses, order_items, orders};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// Another writer appended to the order first; reload and retry.
    #[error("the order was changed concurrently")]
    Conflict,
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

/// Who and which trace caused a write.
#[derive(Debug, Clone, Copy, Default)]
pub struct WriteContext<'a> {
    pub actor: Option<&'a str>,
    pub traceparent: Option<&'a str>,
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
    match previous_version {
        None => {
            let order_row = OrderRow::from_order(order);
            let item_rows = ItemRow::from_order(order);
            let address_rows = AddressRow::from_order(order);
            conn.transaction(async |conn| {
                let conn: &AsyncPgConnection = conn;
                try_join(
                    try_join(
                        diesel::insert_into(orders::table)
                            .values(&order_row)
                            .execute(&mut &*conn),
                        diesel::insert_into(order_items::table)
                            .values(&item_rows)
                            .execute(&mut &*conn),
                    ),
                    try_join(
                        diesel::insert_into(order_addresses::table)
                            .values(&address_rows)
                            .execute(&mut &*conn),
                        diesel::insert_into(events::table)
                            .values(&event_rows)
                            .execute(&mut &*conn),
                    ),
                )
                .await?;
                Ok::<_, StoreError>(())
            })
            .await
        }
        Some(previous_version) => {
            let change = StatusChangeRow::from_order(order);
            let previous_version = i32::try_from(previous_version).context("version overflow")?;
            conn.transaction(async |conn| {
                let conn: &AsyncPgConnection = conn;
                let (_, updated) = try_join(
                    diesel::insert_into(events::table)
                        .values(&event_rows)
                        .execute(&mut &*conn),
                    diesel::update(orders::table)
                        .filter(orders::id.eq(order.id.0))
                        .filter(orders::version.eq(previous_version))
                        .set(&change)
                        .execute(&mut &*conn),
                )
                .await?;
                if updated == 1 {
                    Ok(())
                } else {
                    Err(StoreError::Conflict)
                }
            })
            .await
        }
    }
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
) -> Result<Vec<HistoryEntry>, StoreError> {
    let rows: Vec<EventRow> = events::table
        .filter(events::order_id.eq(id.0))
        .order(events::sequence.asc())
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
