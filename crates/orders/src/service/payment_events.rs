//! What payments reported: a charge that succeeded, failed, or was refunded,
//! and a charge request payments refused outright.

use platform::db;
use uuid::Uuid;

use super::commit::{Decided, Write};
use super::{Actor, OrderError, Orders, PAYMENTS};
use crate::domain::{OrderCommand, OrderId};
use crate::store::INBOX;

/// What consuming an event did.
#[derive(Debug, PartialEq, Eq)]
pub enum Consumed {
    /// It changed the order (events appended).
    Applied,
    /// It was recorded but changed nothing.
    NoChange,
    /// It had been consumed before: no second effect.
    Duplicate,
}

impl Orders {
    /// Applies what payments reported (`payment.*`) to an order, recording
    /// the event in the inbox in the same transaction.
    pub async fn apply_payment_event(
        &self,
        id: OrderId,
        command: OrderCommand,
        event: (Uuid, &str),
        traceparent: Option<&str>,
    ) -> Result<Consumed, OrderError> {
        let actor = Actor::service(PAYMENTS);
        let write = Write {
            traceparent,
            consumed: Some(event),
            ..Write::by(&actor)
        };
        let mut conn = db::connection(&self.pool).await?;
        let decided = self
            .retry_on_conflict(&mut conn, id, write, |order| {
                order.handle(command.clone()).map_err(OrderError::Rule)
            })
            .await?;
        Ok(match decided {
            Decided::Changed(_) => Consumed::Applied,
            Decided::AlreadyConsumed => Consumed::Duplicate,
            Decided::Unchanged(_) => {
                match platform::inbox::record(&mut conn, INBOX, event.0, event.1)
                    .await
                    .map_err(crate::store::StoreError::from)?
                {
                    true => Consumed::NoChange,
                    false => Consumed::Duplicate,
                }
            }
        })
    }

    /// Records that the capture asked for at shipment was refused: the
    /// order stays unshipped with the reason in its history.
    pub async fn record_capture_failed(
        &self,
        id: OrderId,
        payment_id: Uuid,
        reason: String,
    ) -> Result<(), OrderError> {
        self.record_for_payments(
            id,
            OrderCommand::RecordCaptureFailure { payment_id, reason },
        )
        .await
    }

    /// Records that an order could not be charged at all (payments refused
    /// the request itself), so the failure shows in its history.
    pub async fn record_payment_refused(
        &self,
        id: OrderId,
        reason: String,
    ) -> Result<(), OrderError> {
        self.record_for_payments(
            id,
            OrderCommand::RecordPaymentFailure {
                payment_id: None,
                reason,
            },
        )
        .await
    }

    /// Applies what payments answered a job (not an event) as payments.
    async fn record_for_payments(
        &self,
        id: OrderId,
        command: OrderCommand,
    ) -> Result<(), OrderError> {
        let actor = Actor::service(PAYMENTS);
        let mut conn = db::connection(&self.pool).await?;
        self.retry_on_conflict(&mut conn, id, Write::by(&actor), |order| {
            order.handle(command.clone()).map_err(OrderError::Rule)
        })
        .await?;
        Ok(())
    }
}
