//! The read model: `orders`, `order_items` and `order_addresses`, brought up
//! to date in the transaction of every change (see [`super::events::append`])
//! and read by the API.

use diesel::sql_types::{Integer, Nullable, SmallInt, Text};
use diesel::{prelude::*, result::Error as DieselError};
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use futures_util::future::try_join;
use platform::db::Prepared;
use time::OffsetDateTime;
use uuid::Uuid;

use super::StoreError;
use super::rows::{self, AddressRow, ItemRow, OrderRow};
use super::schema::{order_addresses, order_items, orders};
use crate::domain::{Order, OrderId, OrderNumber, OrderStatus, UserId};

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

/// How a reader names an order.
#[derive(Debug, Clone)]
pub enum OrderKey {
    Id(OrderId),
    Number(OrderNumber),
}

/// An order's owner and version, with the public representation stored with
/// its latest event (absent if that event is missing, which a consistent
/// store never shows).
#[derive(Debug, QueryableByName)]
pub struct StoredView {
    #[diesel(sql_type = diesel::sql_types::Uuid)]
    pub id: Uuid,
    #[diesel(sql_type = Text)]
    pub user_id: String,
    #[diesel(sql_type = Integer)]
    pub version: i32,
    #[diesel(sql_type = Nullable<SmallInt>)]
    pub shape: Option<i16>,
    #[diesel(sql_type = Nullable<Text>)]
    pub body: Option<String>,
}

/// The view query, selecting the order by `$where`.
macro_rules! view_where {
    ($where:literal) => {
        concat!(
            "SELECT o.id, o.user_id, o.version, e.snapshot_shape AS shape, ",
            "e.snapshot::text AS body FROM orders.orders o LEFT JOIN orders.events e ",
            "ON e.order_id = o.id AND e.sequence = o.version WHERE ",
            $where
        )
    };
}
const VIEW_BY_ID: &str = view_where!("o.id = $1");
const VIEW_BY_NUMBER: &str = view_where!("o.order_number = $1");

/// The stored public representation of an order: one statement, two
/// primary-key lookups, the JSON text as it was written.
pub async fn find_view(
    conn: &mut AsyncPgConnection,
    key: &OrderKey,
) -> Result<Option<StoredView>, StoreError> {
    let found = match key {
        OrderKey::Id(id) => {
            Prepared(diesel::sql_query(VIEW_BY_ID).bind::<diesel::sql_types::Uuid, _>(id.0))
                .get_result::<StoredView>(conn)
                .await
        }
        OrderKey::Number(number) => {
            Prepared(diesel::sql_query(VIEW_BY_NUMBER).bind::<Text, _>(number.as_str()))
                .get_result::<StoredView>(conn)
                .await
        }
    };
    Ok(found.optional()?)
}
