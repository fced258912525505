//! Fulfilment and cancellation: moving an order along its lifecycle.

use platform::db;

use super::commit::{Write, changed_order, decide_at};
use super::{Actor, OrderError, Orders};
use crate::domain::{
    Order, OrderCommand, OrderId, OrderStatus, RuleViolation, Shipment, Violation,
};

impl Orders {
    /// Moves an order to `status` (`PATCH`), or cancels it (`DELETE`).
    ///
    /// `expected_version` (from `If-Match`) makes the change conditional: it
    /// applies only to that version. Without it a lost race is decided again
    /// on the fresh state, which may then refuse the change (e.g. ship after
    /// cancel).
    pub async fn change_status(
        &self,
        actor: &Actor,
        id: OrderId,
        status: &str,
        reason: Option<String>,
        shipment: Shipment,
        expected_version: Option<u32>,
    ) -> Result<Order, OrderError> {
        let target = OrderStatus::parse(status)
            .ok_or_else(|| OrderError::UnknownStatus(status.to_owned()))?;
        if target != OrderStatus::Shipped && shipment != Shipment::default() {
            return Err(OrderError::Invalid(vec![Violation::new(
                "carrier",
                "carrier and tracking_number go with status `shipped` only",
            )]));
        }
        let mut conn = db::connection(&self.pool).await?;
        let decided = self
            .retry_on_conflict(&mut conn, id, Write::by(actor), |order| {
                let command = OrderCommand::to_reach(target, reason.clone(), shipment.clone())
                    .ok_or(OrderError::Rule(RuleViolation::InvalidTransition {
                        from: order.status,
                        to: target,
                    }))?;
                if target != OrderStatus::Cancelled && !actor.admin {
                    return Err(OrderError::Forbidden(format!(
                        "only an admin (scope orders.admin) may mark an order {target}"
                    )));
                }
                decide_at(order, expected_version, command)
            })
            .await?;
        changed_order(decided)
    }
}
