//! The read model: `orders` and `order_items` (no personal field: an
//! order's view is its last event's snapshot, its personal part sealed),
//! brought up to date in the transaction of every change (see
//! [`super::events::append`]) and read by the API.

use anyhow::Context;
use diesel::prelude::*;
use diesel::sql_types::{Bytea, Integer, Nullable, SmallInt, Text};
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use platform::db::Prepared;
use platform::privacy::{KeyRing, WrappedKey};
use time::OffsetDateTime;
use uuid::Uuid;

use super::StoreError;
use super::schema::orders;
use crate::domain::{OrderId, OrderNumber, OrderStatus, UserId};

/// What the read model says of an order: its owner, status and version.
/// A read only: it cannot be handed to a command, which always decides on
/// the order replayed from its events (payment ledger included).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProjectedOrder {
    pub id: OrderId,
    pub user_id: String,
    pub status: OrderStatus,
    pub version: u32,
}

/// The read model's row of order `id`, if there is one.
pub async fn find_projected(
    conn: &mut AsyncPgConnection,
    id: OrderId,
) -> Result<Option<ProjectedOrder>, StoreError> {
    let row: Option<(String, String, i32)> = orders::table
        .find(id.0)
        .select((orders::user_id, orders::status, orders::version))
        .first(conn)
        .await
        .optional()?;
    row.map(|(user_id, status, version)| {
        Ok(ProjectedOrder {
            id,
            user_id,
            status: OrderStatus::parse(&status).ok_or_else(|| {
                StoreError::Unexpected(anyhow::anyhow!("order {id} has status {status}"))
            })?,
            version: u32::try_from(version).map_err(|_| {
                StoreError::Unexpected(anyhow::anyhow!("order {id}: negative version"))
            })?,
        })
    })
    .transpose()
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

/// Which orders a list shows, and which page of them.
#[derive(Debug, Clone)]
pub struct ListFilter {
    pub user_id: Option<UserId>,
    pub status: Option<OrderStatus>,
    pub limit: u32,
    /// Orders to skip (the contract's `offset`; at most [`MAX_OFFSET`]).
    pub offset: u32,
    /// Keyset: only orders older than this one (`created_at`, `id`).
    pub before: Option<(OffsetDateTime, Uuid)>,
}

/// The deepest `offset` served; deeper pages are reached with the cursor.
pub const MAX_OFFSET: u32 = 10_000;

/// A `total` is counted up to this many orders, never further.
pub const COUNT_CAP: i64 = 1_000;

/// A page of stored views, newest first.
#[derive(Debug)]
pub struct ViewPage {
    pub views: Vec<ListedView>,
    /// Whether more orders follow the page.
    pub has_more: bool,
}

/// What opens a stored view's personal part: the order's owner, the event
/// the view is stored with, its sealed part and the owner's data key.
#[derive(Debug, QueryableByName)]
pub struct ViewSeal {
    #[diesel(sql_type = Text)]
    pub user_id: String,
    #[diesel(sql_type = Integer)]
    pub version: i32,
    #[diesel(sql_type = Nullable<Bytea>)]
    sealed: Option<Vec<u8>>,
    #[diesel(sql_type = Nullable<diesel::sql_types::Uuid>)]
    key_id: Option<Uuid>,
    #[diesel(sql_type = Nullable<Text>)]
    kek_id: Option<String>,
    #[diesel(sql_type = Nullable<Bytea>)]
    wrapped: Option<Vec<u8>>,
}

/// The columns of a [`ViewSeal`], from `orders o`, `events e` and
/// `data_keys k`.
const SEAL_COLUMNS: &str = "o.user_id, o.version, e.sealed, k.key_id, k.kek_id, k.wrapped";
/// The joins a view query needs.
const VIEW_JOINS: &str = "LEFT JOIN orders.events e ON e.order_id = o.id AND e.sequence = o.version \
     LEFT JOIN orders.data_keys k ON k.user_id = o.user_id";

impl ViewSeal {
    /// The whole representation of order `id` from its stored public part.
    pub fn open(&self, ring: &KeyRing, id: Uuid, public: String) -> anyhow::Result<String> {
        let Some(sealed) = &self.sealed else {
            return Ok(public);
        };
        let key = match (self.key_id, &self.kek_id, &self.wrapped) {
            (Some(key_id), Some(kek_id), Some(wrapped)) => Some(ring.unwrap(
                &self.user_id,
                &WrappedKey {
                    id: key_id,
                    kek_id: kek_id.clone(),
                    wrapped: wrapped.clone(),
                },
            )?),
            _ => None,
        };
        let sequence = u32::try_from(self.version).context("negative version")?;
        super::sealed::open_snapshot(key.as_ref(), Some(sealed), id, sequence, public)
    }
}

/// One order of a list: its stored representation, and where it sorts.
#[derive(Debug, QueryableByName)]
pub struct ListedView {
    #[diesel(sql_type = diesel::sql_types::Uuid)]
    pub id: Uuid,
    #[diesel(sql_type = diesel::sql_types::Timestamptz)]
    pub created_at: OffsetDateTime,
    #[diesel(sql_type = Nullable<SmallInt>)]
    pub shape: Option<i16>,
    #[diesel(sql_type = Nullable<Text>)]
    pub body: Option<String>,
    #[diesel(embed)]
    pub seal: ViewSeal,
}

#[derive(Debug, QueryableByName)]
struct Counted {
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    n: i64,
}

/// The `WHERE` of a list (a few fixed shapes, so each is prepared once),
/// with the number of the next bind.
fn list_where(filter: &ListFilter) -> (String, usize) {
    let mut clauses = Vec::new();
    let mut bind = 1;
    if filter.user_id.is_some() {
        clauses.push(format!("o.user_id = ${bind}"));
        bind += 1;
    }
    if filter.status.is_some() {
        clauses.push(format!("o.status = ${bind}"));
        bind += 1;
    }
    if filter.before.is_some() {
        clauses.push(format!("(o.created_at, o.id) < (${}, ${})", bind, bind + 1));
        bind += 2;
    }
    let clause = if clauses.is_empty() {
        String::new()
    } else {
        format!(" WHERE {}", clauses.join(" AND "))
    };
    (clause, bind)
}

fn bind_filter<'a>(
    mut query: diesel::query_builder::BoxedSqlQuery<
        'a,
        diesel::pg::Pg,
        diesel::query_builder::SqlQuery,
    >,
    filter: &'a ListFilter,
) -> diesel::query_builder::BoxedSqlQuery<'a, diesel::pg::Pg, diesel::query_builder::SqlQuery> {
    if let Some(user_id) = &filter.user_id {
        query = query.bind::<Text, _>(user_id.as_str());
    }
    if let Some(status) = filter.status {
        query = query.bind::<Text, _>(status.as_str());
    }
    if let Some((at, id)) = filter.before {
        query = query
            .bind::<diesel::sql_types::Timestamptz, _>(at)
            .bind::<diesel::sql_types::Uuid, _>(id);
    }
    query
}

/// A page of orders, newest first, as their stored views: one statement
/// walking the index that matches the filter (`(user_id | status,)
/// created_at DESC, id DESC`), never counting what it does not show.
pub async fn list_views(
    conn: &AsyncPgConnection,
    filter: &ListFilter,
) -> Result<ViewPage, StoreError> {
    let (clause, bind) = list_where(filter);
    let sql = format!(
        "SELECT o.id, o.created_at, e.snapshot_shape AS shape, e.snapshot::text AS body, \
         {SEAL_COLUMNS} FROM orders.orders o {VIEW_JOINS}{clause} \
         ORDER BY o.created_at DESC, o.id DESC LIMIT ${bind} OFFSET ${}",
        bind + 1
    );
    let query = bind_filter(diesel::sql_query(sql).into_boxed(), filter)
        .bind::<diesel::sql_types::BigInt, _>(i64::from(filter.limit) + 1)
        .bind::<diesel::sql_types::BigInt, _>(i64::from(filter.offset));
    let mut views = Prepared(query).load::<ListedView>(&mut &*conn).await?;
    let has_more = views.len() > filter.limit as usize;
    views.truncate(filter.limit as usize);
    Ok(ViewPage { views, has_more })
}

/// How many orders match `filter` (its cursor included), counted up to
/// [`COUNT_CAP`] + 1 on the index alone.
pub async fn count_orders(
    conn: &AsyncPgConnection,
    filter: &ListFilter,
) -> Result<i64, StoreError> {
    let (clause, bind) = list_where(filter);
    let sql = format!(
        "SELECT count(*) AS n FROM (SELECT 1 FROM orders.orders o{clause} LIMIT ${bind}) capped"
    );
    let query = bind_filter(diesel::sql_query(sql).into_boxed(), filter)
        .bind::<diesel::sql_types::BigInt, _>(COUNT_CAP + 1);
    Ok(Prepared(query).get_result::<Counted>(&mut &*conn).await?.n)
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
    #[diesel(sql_type = Nullable<SmallInt>)]
    pub shape: Option<i16>,
    #[diesel(sql_type = Nullable<Text>)]
    pub body: Option<String>,
    #[diesel(embed)]
    pub seal: ViewSeal,
}

/// The view query, selecting the order by `$where`.
macro_rules! view_where {
    ($where:literal) => {
        concat!(
            "SELECT o.id, e.snapshot_shape AS shape, e.snapshot::text AS body, ",
            "o.user_id, o.version, e.sealed, k.key_id, k.kek_id, k.wrapped ",
            "FROM orders.orders o LEFT JOIN orders.events e ",
            "ON e.order_id = o.id AND e.sequence = o.version ",
            "LEFT JOIN orders.data_keys k ON k.user_id = o.user_id WHERE ",
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
