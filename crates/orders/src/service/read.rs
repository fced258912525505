//! Reading orders: one order, a page of orders, an order's history.

use anyhow::Context;
use platform::db::{self, JsonText};
use uuid::Uuid;

use super::{Actor, OrderError, Orders};
use crate::domain::{OrderId, OrderNumber, UserId};
use crate::store::projections::ProjectedOrder;
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

/// A page of orders, newest first.
#[derive(Debug)]
pub struct Page {
    /// Each order as `contracts::order::OrderData` JSON.
    pub orders: Vec<String>,
    /// Orders matching the filter across all pages, counted up to
    /// [`store::COUNT_CAP`].
    pub total: u64,
    /// Whether more than [`store::COUNT_CAP`] orders match (`total` is then
    /// the cap).
    pub total_capped: bool,
    /// Where the next page starts (`created_at`, `id` of the last order),
    /// if there is one.
    pub next: Option<(time::OffsetDateTime, Uuid)>,
}

impl Orders {
    /// What the read model says of order `id`, if the actor may see it (a
    /// read: commands decide on the order replayed from its events).
    pub async fn find(&self, actor: &Actor, id: OrderId) -> Result<ProjectedOrder, OrderError> {
        let mut conn = db::connection(&self.pool).await?;
        store::projections::find_projected(&mut conn, id)
            .await?
            .filter(|order| actor.acts_for(&order.user_id))
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
            .filter(|stored| actor.acts_for(&stored.seal.user_id))
            .ok_or(OrderError::NotFound)?;
        let version = u32::try_from(stored.seal.version).context("negative order version")?;
        if let (Some(view::SHAPE), Some(json)) = (stored.shape, stored.body) {
            let json = stored.seal.open(&self.privacy, stored.id, json)?;
            return Ok(OrderView { version, json });
        }
        // Rendered from its history: what the projection does not hold
        // (returns) is shown too.
        let (order, _) = store::events::load_order(&mut conn, &self.privacy, OrderId(stored.id))
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
        // The page and the count of all pages, pipelined in one round trip.
        let everything = ListFilter {
            before: None,
            ..filter.clone()
        };
        let (page, counted) = futures_util::future::try_join(
            store::projections::list_views(&conn, &filter),
            store::projections::count_orders(&conn, &everything),
        )
        .await?;
        let next = page
            .has_more
            .then(|| page.views.last().map(|last| (last.created_at, last.id)))
            .flatten();
        let mut orders = Vec::with_capacity(page.views.len());
        for listed in page.views {
            match (listed.shape, listed.body) {
                (Some(view::SHAPE), Some(json)) => {
                    orders.push(listed.seal.open(&self.privacy, listed.id, json)?)
                }
                // Stored in another shape: rendered from its history.
                _ => {
                    let (order, _) =
                        store::events::load_order(&mut conn, &self.privacy, OrderId(listed.id))
                            .await?
                            .ok_or(OrderError::NotFound)?;
                    orders.push(
                        JsonText::of(&view::order_data(&order))
                            .context("rendering an order")?
                            .0,
                    );
                }
            }
        }
        Ok(Page {
            orders,
            total: u64::try_from(counted.min(store::COUNT_CAP)).unwrap_or_default(),
            total_capped: counted > store::COUNT_CAP,
            next,
        })
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
        self.find(actor, id).await?;
        let mut conn = db::connection(&self.pool).await?;
        Ok(store::events::history_entries(&mut conn, &self.privacy, id, after, limit).await?)
    }
}
