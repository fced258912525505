//! `restock`: give a received return's units back to the catalogue.

use crate::domain::{LineItem, OrderId};
use crate::service::{OrderError, Orders, stock::reserve};
use futures_util::future::BoxFuture;
use platform::db;
use platform::jobs::{Kind, NewJob, Outcome, Runs};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::Jobs;

/// Payload of a `restock` job: give a received return's units back to the
/// catalogue (the order's reservation re-reserved without them).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RestockJob {
    pub order_id: Uuid,
}

impl Kind for RestockJob {
    const KIND: &'static str = "restock";
}

/// Restocking after a received return (keyed by the return).
pub(in crate::service) fn restock(id: OrderId, return_id: Uuid) -> NewJob {
    RestockJob { order_id: id.0 }.job(return_id.to_string())
}

impl Runs<RestockJob> for Jobs {
    fn run(&self, job: RestockJob) -> BoxFuture<'_, Outcome> {
        Box::pin(self.orders.restock(job))
    }
}

impl Orders {
    /// The `restock` job: gives the units of the order's received returns
    /// back to the catalogue, by re-reserving the order's lines without them
    /// (releasing the reservation once nothing is left). Idempotent: the
    /// reservation is keyed by the order and set to what the history says.
    pub async fn restock(&self, job: RestockJob) -> Outcome {
        let Some(catalog) = &self.catalog else {
            return Outcome::Done;
        };
        let id = OrderId(job.order_id);
        let loaded = async {
            let mut conn = db::connection(&self.pool).await?;
            Ok::<_, OrderError>(
                crate::store::events::load_order(&mut conn, &self.privacy, id)
                    .await?
                    .map(|(order, _)| order),
            )
        }
        .await;
        let order = match loaded {
            Ok(Some(order)) => order,
            Ok(None) => return Outcome::Park(format!("no order {id}")),
            Err(error) => return Outcome::Retry(error.to_string()),
        };
        let kept: Vec<LineItem> = order
            .items
            .iter()
            .filter_map(|item| {
                let back: u32 = order
                    .returns
                    .iter()
                    .filter(|r| r.status == crate::domain::ReturnStatus::Received)
                    .flat_map(|r| &r.lines)
                    .filter(|line| line.item_id == item.id)
                    .map(|line| line.quantity.get())
                    .sum();
                let quantity = crate::domain::Quantity::parse(i64::from(
                    item.quantity.get().saturating_sub(back),
                ))
                .ok()?;
                Some(LineItem {
                    quantity,
                    ..item.clone()
                })
            })
            .collect();
        let done = if kept.is_empty() {
            catalog
                .release(id.0)
                .await
                .map_err(|error| error.to_string())
        } else {
            reserve(catalog, id, &kept)
                .await
                .map_err(|error| error.to_string())
        };
        match done {
            Ok(()) => {
                tracing::info!(order.id = %id, "returned units given back to the catalogue");
                Outcome::Done
            }
            Err(error) => Outcome::Retry(error),
        }
    }
}
