//! Cancelling orders left unpaid (`order.cancelled`, reason
//! `payment_timeout`).

use platform::clock::now;
use platform::db;

use super::commit::{Decided, Write};
use super::{Actor, OrderError, Orders, SYSTEM};
use crate::domain::OrderCommand;
use crate::store;

/// Orders looked at per sweep.
const BATCH: i64 = 100;

impl Orders {
    /// Cancels pending orders placed more than `unpaid_for` ago; returns how
    /// many. A payment that wins the race keeps its order.
    pub async fn expire_unpaid(&self, unpaid_for: time::Duration) -> Result<usize, OrderError> {
        let actor = Actor::service(SYSTEM);
        let mut conn = db::connection(&self.pool).await?;
        let mut expired = 0;
        let due =
            store::projections::pending_placed_before(&mut conn, now() - unpaid_for, BATCH).await?;
        for id in due {
            let decided = self
                .retry_on_conflict(&mut conn, id, Write::by(&actor), |order| {
                    order.handle(OrderCommand::Expire).map_err(OrderError::Rule)
                })
                .await;
            match decided {
                Ok(Decided::Changed(_)) => {
                    expired += 1;
                    tracing::info!(order.id = %id, "unpaid order cancelled");
                }
                // Gone, paid meanwhile, or still contended: the next sweep looks again.
                Ok(_) | Err(OrderError::NotFound | OrderError::Conflict) => {}
                Err(other) => return Err(other),
            }
        }
        Ok(expired)
    }
}
