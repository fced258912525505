//! Rebuilding the read model (`orders`, `order_items`)
//! from the event store, one order at a time, online.
//!
//! Each order is rebuilt in a transaction of its own that first locks its
//! projection row: a writer deciding on the order meanwhile waits, then
//! finds the row it guarded by version gone and retries on the rebuilt one
//! (the write path's optimistic concurrency). The rows the events give are
//! compared, field by field, with the rows stored; only an order that
//! differs is rewritten, and only when asked to (`apply`).

use diesel::prelude::*;
use diesel::sql_types::{BigInt, Nullable, Uuid as SqlUuid};
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use serde_json::Value;
use uuid::Uuid;

use super::StoreError;
use super::rows::{ItemRow, OrderRow};
use super::schema::{order_items, orders};
use crate::domain::OrderId;

/// One field whose stored value is not what the events say.
#[derive(Debug, Clone, PartialEq, serde::Serialize, utoipa::ToSchema)]
pub struct Difference {
    pub order_id: Uuid,
    /// `orders.status`, `order_items[1].quantity`, or a whole row
    /// (`order_items[2]`).
    pub field: String,
    /// What is stored (`null`: no such row); personal data masked.
    #[schema(value_type = Object)]
    pub current: Value,
    /// What the events give (`null`: no such row); personal data masked.
    #[schema(value_type = Object)]
    pub rebuilt: Value,
}

#[derive(QueryableByName)]
struct Id {
    #[diesel(sql_type = SqlUuid)]
    order_id: Uuid,
}

/// The ids of up to `limit` orders of the event store after `after`, in id
/// order.
pub async fn order_ids(
    conn: &mut AsyncPgConnection,
    after: Option<Uuid>,
    limit: i64,
) -> Result<Vec<Uuid>, StoreError> {
    let ids: Vec<Id> = diesel::sql_query(
        "SELECT DISTINCT order_id FROM orders.events \
         WHERE ($1::uuid IS NULL OR order_id > $1) ORDER BY order_id LIMIT $2",
    )
    .bind::<Nullable<SqlUuid>, _>(after)
    .bind::<BigInt, _>(limit)
    .load(conn)
    .await?;
    Ok(ids.into_iter().map(|id| id.order_id).collect())
}

fn json(value: &impl serde::Serialize) -> Result<Value, StoreError> {
    serde_json::to_value(value).map_err(|error| StoreError::Unexpected(error.into()))
}

fn masked(field: &str, mut value: Value) -> Value {
    let name = field.rsplit('.').next().unwrap_or(field);
    if platform::ops::mask::MASKED_FIELDS.contains(&name) && !value.is_null() {
        return Value::String(platform::ops::mask::MASK.to_owned());
    }
    platform::ops::mask::json(&mut value);
    value
}

/// Compares two rows (JSON objects, or `null` for none) field by field.
fn compare(order_id: Uuid, row: &str, current: &Value, rebuilt: &Value, out: &mut Vec<Difference>) {
    match (current, rebuilt) {
        (Value::Object(current), Value::Object(rebuilt)) => {
            for (name, value) in rebuilt {
                let stored = current.get(name).unwrap_or(&Value::Null);
                if stored != value {
                    let field = format!("{row}.{name}");
                    out.push(Difference {
                        order_id,
                        current: masked(&field, stored.clone()),
                        rebuilt: masked(&field, value.clone()),
                        field,
                    });
                }
            }
        }
        (current, rebuilt) if current != rebuilt => out.push(Difference {
            order_id,
            field: row.to_owned(),
            current: masked(row, current.clone()),
            rebuilt: masked(row, rebuilt.clone()),
        }),
        _ => {}
    }
}

fn keyed<T: serde::Serialize>(
    rows: &[T],
    key: impl Fn(&Value, usize) -> String,
) -> Result<Vec<(String, Value)>, StoreError> {
    rows.iter()
        .enumerate()
        .map(|(index, row)| {
            let value = json(row)?;
            Ok((key(&value, index), value))
        })
        .collect()
}

fn compare_rows(
    order_id: Uuid,
    current: &[(String, Value)],
    rebuilt: &[(String, Value)],
    out: &mut Vec<Difference>,
) {
    let find = |rows: &[(String, Value)], key: &str| {
        rows.iter()
            .find(|(k, _)| k == key)
            .map_or(Value::Null, |(_, v)| v.clone())
    };
    for (key, value) in rebuilt {
        compare(order_id, key, &find(current, key), value, out);
    }
    for (key, value) in current {
        if !rebuilt.iter().any(|(k, _)| k == key) {
            compare(order_id, key, value, &Value::Null, out);
        }
    }
}

/// Rebuilds order `id` from its events and compares the result with its
/// stored rows; rewrites them when they differ and `apply`. Returns the
/// differences (empty: the read model is right).
pub async fn rebuild_order(
    conn: &mut AsyncPgConnection,
    id: Uuid,
    apply: bool,
) -> Result<Vec<Difference>, StoreError> {
    conn.transaction(async move |conn| -> Result<Vec<Difference>, StoreError> {
        // Holds writers of this order off until the rebuild commits.
        let current_order: Option<OrderRow> = orders::table
            .find(id)
            .select(OrderRow::as_select())
            .for_update()
            .first(conn)
            .await
            .optional()?;
        let Some(order) = super::events::load_order_impersonal(conn, OrderId(id)).await? else {
            return Ok(Vec::new());
        };
        let current_items: Vec<ItemRow> = order_items::table
            .filter(order_items::order_id.eq(id))
            .order(order_items::line.asc())
            .select(ItemRow::as_select())
            .load(conn)
            .await?;
        let rebuilt_order = OrderRow::from_order(&order);
        let rebuilt_items = ItemRow::from_order(&order);

        let mut differences = Vec::new();
        let current = match &current_order {
            Some(row) => json(row)?,
            None => Value::Null,
        };
        compare(
            id,
            "orders",
            &current,
            &json(&rebuilt_order)?,
            &mut differences,
        );
        let item_key = |_: &Value, index: usize| format!("order_items[{index}]");
        compare_rows(
            id,
            &keyed(&current_items, item_key)?,
            &keyed(&rebuilt_items, item_key)?,
            &mut differences,
        );

        if apply && !differences.is_empty() {
            // Items go with the order row (ON DELETE CASCADE).
            diesel::delete(orders::table.find(id)).execute(conn).await?;
            diesel::insert_into(orders::table)
                .values(&rebuilt_order)
                .execute(conn)
                .await?;
            diesel::insert_into(order_items::table)
                .values(&rebuilt_items)
                .execute(conn)
                .await?;
        }
        Ok(differences)
    })
    .await
}
