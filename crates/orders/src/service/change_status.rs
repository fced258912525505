//! Fulfilment and cancellation: moving an order along its lifecycle.

use platform::db;

use super::commit::{Decided, Write};
use super::{Actor, OrderError, Orders};
use crate::domain::{
    Order, OrderCommand, OrderEvent, OrderId, OrderStatus, RuleViolation, Shipment, Violation,
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

/// Checks `If-Match` against the order's version, then lets the aggregate
/// decide `command`.
pub(super) fn decide_at(
    order: &Order,
    expected_version: Option<u32>,
    command: OrderCommand,
) -> Result<Vec<OrderEvent>, OrderError> {
    if let Some(expected) = expected_version
        && expected != order.version
    {
        return Err(OrderError::VersionMismatch {
            expected,
            current: order.version,
        });
    }
    order.handle(command).map_err(OrderError::Rule)
}

/// The order a change left (changed, or as it stood when nothing changed).
pub(super) fn changed_order(decided: Decided) -> Result<Order, OrderError> {
    match decided {
        Decided::Changed(order) | Decided::Unchanged(order) => Ok(order),
        // A change asked for over HTTP consumes no event.
        Decided::AlreadyConsumed => Err(OrderError::Unexpected(anyhow::anyhow!(
            "a request's change reported a consumed event"
        ))),
    }
}
