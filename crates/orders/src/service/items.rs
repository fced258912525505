//! Editing the lines of a pending order.

use platform::db;
use platform::idempotency::IdempotencyKey;

use super::commit::{Write, changed_order, decide_at, record};
use super::{Actor, OrderError, Orders, Placed, stock};
use crate::domain::{Order, OrderCommand, OrderId};

/// What an item edit did.
#[derive(Debug)]
pub enum ItemsChanged {
    Changed(Box<Order>),
    /// The same request (Idempotency-Key) again: the first answer.
    Replayed(Placed),
}

impl Orders {
    /// Adds, changes or removes a line of a pending order (the owner or an
    /// admin), conditional on `expected_version` like a status change.
    /// `decide` builds the command from the loaded order (e.g. parses a
    /// price in the order's currency).
    ///
    /// With a catalogue, an added line is priced by it, and the order's
    /// reservation is re-reserved with the new quantities before the change
    /// is committed, on the version it was decided on.
    ///
    /// With an Idempotency-Key, the answer is stored with the change and a
    /// repeated request replays it.
    pub async fn change_items(
        &self,
        actor: &Actor,
        id: OrderId,
        expected_version: Option<u32>,
        key: Option<IdempotencyKey>,
        decide: impl Fn(&Order) -> Result<OrderCommand, OrderError>,
    ) -> Result<ItemsChanged, OrderError> {
        if let Some(key) = &key
            && let Some(replayed) = self.claim(actor, key).await?
        {
            return Ok(ItemsChanged::Replayed(replayed));
        }
        let max_events = self.max_events;
        let capped = move |order: &Order| {
            if order.version >= max_events {
                return Err(OrderError::HistoryFull(order.version));
            }
            decide(order)
        };
        match self
            .edit_items(actor, id, expected_version, key.as_ref(), capped)
            .await
        {
            Ok(order) => Ok(ItemsChanged::Changed(Box::new(order))),
            Err(error) => {
                self.release(actor, key.as_ref()).await;
                Err(error)
            }
        }
    }

    async fn edit_items(
        &self,
        actor: &Actor,
        id: OrderId,
        expected_version: Option<u32>,
        key: Option<&IdempotencyKey>,
        decide: impl Fn(&Order) -> Result<OrderCommand, OrderError>,
    ) -> Result<Order, OrderError> {
        let write = Write {
            answer_under: key,
            ..Write::by(actor)
        };
        let mut conn = db::connection(&self.pool).await?;
        let Some(catalog) = &self.catalog else {
            let decided = self
                .retry_on_conflict(&mut conn, id, write, |order| {
                    decide_at(order, expected_version, decide(order)?)
                })
                .await?;
            return changed_order(decided);
        };
        // With a catalogue: price the new line and reserve the new
        // quantities first, then commit on the version that was decided on.
        let (current, _) = crate::store::events::load_order(&mut conn, &self.privacy, id)
            .await?
            .filter(|(order, _)| actor.acts_for(order.user_id.as_str()))
            .ok_or(OrderError::NotFound)?;
        drop(conn);
        let mut command = decide(&current)?;
        if let OrderCommand::AddItem { item } = &mut command {
            let (_, priced) =
                stock::snapshot(catalog, Some(current.currency), vec![item.clone()]).await?;
            if let Some(priced) = priced.into_iter().next() {
                *item = priced;
            }
        }
        let events = current.handle(command.clone()).map_err(OrderError::Rule)?;
        if events.is_empty() {
            return Ok(current);
        }
        let mut next = current.clone();
        for recorded in record(id, current.version, events) {
            next.apply(&recorded).map_err(anyhow::Error::from)?;
        }
        stock::reserve(catalog, id, &next.items).await?;
        let version = expected_version.unwrap_or(current.version);
        let mut conn = db::connection(&self.pool).await?;
        let decided = self
            .retry_on_conflict(&mut conn, id, write, |order| {
                decide_at(order, Some(version), command.clone())
            })
            .await?;
        changed_order(decided)
    }
}
