//! Returns: the owner of a delivered order sends lines back; an admin marks
//! a return received, which refunds the lines' share by durable work (the
//! `refund_return` job, see [`crate::service::jobs`]).

use platform::clock::now;
use platform::db;
use uuid::Uuid;

use super::commit::{Write, changed_order};
use super::{Actor, OrderError, Orders};
use crate::domain::{Order, OrderCommand, OrderId, ReturnLine};

impl Orders {
    /// Asks to return `lines` of a delivered order of the actor's. The same
    /// `return_id` again changes nothing.
    pub async fn request_return(
        &self,
        actor: &Actor,
        id: OrderId,
        return_id: Uuid,
        lines: Vec<ReturnLine>,
        reason: String,
    ) -> Result<Order, OrderError> {
        let policy = self.returns;
        let mut conn = db::connection(&self.pool).await?;
        let decided = self
            .retry_on_conflict(&mut conn, id, Write::by(actor), |order| {
                order
                    .handle(OrderCommand::RequestReturn {
                        return_id,
                        lines: lines.clone(),
                        reason: reason.clone(),
                        now: now(),
                        policy,
                    })
                    .map_err(OrderError::Rule)
            })
            .await?;
        changed_order(decided)
    }

    /// Marks a return received (admins): its lines' share of what was paid
    /// is refunded, once. Receiving it again changes nothing.
    pub async fn receive_return(
        &self,
        actor: &Actor,
        id: OrderId,
        return_id: Uuid,
    ) -> Result<Order, OrderError> {
        if !actor.admin {
            return Err(OrderError::Forbidden(
                "only an admin (scope orders.admin) may receive a return".into(),
            ));
        }
        let mut conn = db::connection(&self.pool).await?;
        let decided = self
            .retry_on_conflict(&mut conn, id, Write::by(actor), |order| {
                order
                    .handle(OrderCommand::ReceiveReturn { return_id })
                    .map_err(OrderError::Rule)
            })
            .await?;
        changed_order(decided)
    }
}
