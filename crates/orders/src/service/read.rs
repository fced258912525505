//! Reading orders: one order, a page of orders, an order's history.

use platform::db;
use uuid::Uuid;

use super::{Actor, OrderError, Orders};
use crate::domain::{Order, OrderId, OrderNumber, UserId};
use crate::store::{self, HistoryEntry, ListFilter};

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
        let id = match Uuid::parse_str(key) {
            Ok(id) => OrderId(id),
            Err(_) => {
                let number = OrderNumber::parse(key).map_err(|_| OrderError::NotFound)?;
                store::projections::find_id_by_number(&mut conn, &number)
                    .await?
                    .ok_or(OrderError::NotFound)?
            }
        };
        store::projections::find_order(&mut conn, id)
            .await?
            .filter(|order| actor.acts_for(order.user_id.as_str()))
            .ok_or(OrderError::NotFound)
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
