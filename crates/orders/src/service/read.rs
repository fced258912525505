//! Reading orders: one order, a page of orders, an order's history.

use anyhow::Context;
use platform::db::{self, JsonText};
use uuid::Uuid;

use super::{Actor, OrderError, Orders};
use crate::domain::{Order, OrderId, OrderNumber, UserId};
use crate::store::{self, HistoryEntry, ListFilter, OrderKey};
use crate::view;

/// An order's public representation, ready to send.
#[derive(Debug)]
pub struct OrderView {
    /// The order's version (its ETag).
    pub version: u32,
    /// The order as `contracts::order::OrderData` JSON.
    pub json: String,
}

/// An order's id, or else its order number; anything else names no order.
fn parse_key(key: &str) -> Result<OrderKey, OrderError> {
    match Uuid::parse_str(key) {
        Ok(id) => Ok(OrderKey::Id(OrderId(id))),
        Err(_) => OrderNumber::parse(key)
            .map(OrderKey::Number)
            .map_err(|_| OrderError::NotFound),
    }
}

/// A page of orders.
#[derive(Debug)]
pub struct Page {
    pub orders: Vec<Order>,
    pub total: u64,
}

impl Orders {
    /// An order by id or order number, if the actor may see it.
    pub async fn find(&self, actor: &Actor, key: &str) -> Result<Order, OrderError> {
        let mut conn = db::connection(&self.pool).await?;
        let id = match parse_key(key)? {
            OrderKey::Id(id) => id,
            OrderKey::Number(number) => store::projections::find_id_by_number(&mut conn, &number)
                .await?
                .ok_or(OrderError::NotFound)?,
        };
        store::projections::find_order(&mut conn, id)
            .await?
            .filter(|order| actor.acts_for(order.user_id.as_str()))
            .ok_or(OrderError::NotFound)
    }

    /// The public representation of an order the actor may see, by id or
    /// order number: the JSON stored with its latest event, as it was
    /// written (one statement, nothing decoded), or rendered afresh when it
    /// was stored in another shape ([`view::SHAPE`]).
    pub async fn view(&self, actor: &Actor, key: &str) -> Result<OrderView, OrderError> {
        let key = parse_key(key)?;
        let mut conn = db::connection(&self.pool).await?;
        let stored = store::projections::find_view(&mut conn, &key)
            .await?
            .filter(|stored| actor.acts_for(&stored.user_id))
            .ok_or(OrderError::NotFound)?;
        let version = u32::try_from(stored.version).context("negative order version")?;
        if let (Some(view::SHAPE), Some(json)) = (stored.shape, stored.body) {
            return Ok(OrderView { version, json });
        }
        // Rendered from its history: what the projection does not hold
        // (returns) is shown too.
        let order = store::events::load_order(&mut conn, OrderId(stored.id))
            .await?
            .ok_or(OrderError::NotFound)?;
        let json = JsonText::of(&view::order_data(&order)).context("rendering an order")?;
        Ok(OrderView {
            version: order.version,
            json: json.0,
        })
    }

    /// The orders the actor may see, newest first.
    pub async fn list(&self, actor: &Actor, mut filter: ListFilter) -> Result<Page, OrderError> {
        if !actor.admin {
            match &filter.user_id {
                Some(user) if user.as_str() != actor.user_id => {
                    return Err(OrderError::Forbidden(
                        "only an admin may list another user's orders".into(),
                    ));
                }
                _ => {
                    filter.user_id =
                        Some(UserId::parse(&actor.user_id).map_err(anyhow::Error::msg)?)
                }
            }
        }
        let mut conn = db::connection(&self.pool).await?;
        let (orders, total) = store::projections::list_orders(&mut conn, &filter).await?;
        Ok(Page { orders, total })
    }

    /// The audit trail of an order the actor may see.
    pub async fn history(
        &self,
        actor: &Actor,
        id: OrderId,
        after: u32,
        limit: u32,
    ) -> Result<Vec<HistoryEntry>, OrderError> {
        // Ownership is checked on the projection (cheap); the trail itself is
        // read from the event store.
        self.find(actor, &id.to_string()).await?;
        let mut conn = db::connection(&self.pool).await?;
        Ok(store::events::history_entries(&mut conn, id, after, limit).await?)
    }
}
