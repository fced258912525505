//! `refund_return`: have payments refund a received return's share (keyed
//! by the return: refunded once).

use contracts::{
    money::Amount,
    payment::{CreateRefundBody, RefundLine},
    problem,
};

use crate::domain::events::OrderReturnReceived;
use crate::domain::{OrderId, ReturnLine};
use futures_util::future::BoxFuture;
use platform::jobs::{Kind, NewJob, Outcome, Runs};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::Jobs;

/// Payload of a `refund_return` job: have payments refund a received
/// return's share.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RefundReturnJob {
    pub order_id: Uuid,
    pub return_id: Uuid,
    pub payment_id: Uuid,
    /// Decimal string in the order's currency.
    pub amount: String,
    pub currency: String,
    /// The returned lines: `[{"item_id", "quantity"}]`.
    pub items: serde_json::Value,
    #[serde(default)]
    pub traceparent: Option<String>,
}

impl Kind for RefundReturnJob {
    const KIND: &'static str = "refund_return";
}

/// Refunding a received return (keyed by it: refunded once).
pub(in crate::service) fn refund_return(
    id: OrderId,
    received: &OrderReturnReceived,
    payment_id: Uuid,
    lines: &[ReturnLine],
    traceparent: Option<&str>,
) -> NewJob {
    RefundReturnJob {
        order_id: id.0,
        return_id: received.return_id,
        payment_id,
        amount: received.refund.to_string(),
        currency: received.refund.currency().code().to_owned(),
        items: serde_json::json!(lines),
        traceparent: traceparent.map(str::to_owned),
    }
    .job(received.return_id.to_string())
}

impl Runs<RefundReturnJob> for Jobs {
    fn run(&self, job: RefundReturnJob) -> BoxFuture<'_, Outcome> {
        Box::pin(self.refund_return(job))
    }
}

impl Jobs {
    /// Refunds a received return's share from the payment that paid the
    /// order, keyed by the return (payments takes it once). Refused (more
    /// than remains refundable, nothing taken): parked for an operator, with
    /// the reason.
    async fn refund_return(&self, job: RefundReturnJob) -> Outcome {
        let payment = job.payment_id.to_string();
        let (amount, items) = match (
            Amount::parse(&job.amount),
            serde_json::from_value::<Vec<RefundLine>>(job.items.clone()),
        ) {
            (Ok(amount), Ok(items)) => (amount, items),
            (Err(error), _) => return Outcome::Park(format!("invalid refund amount: {error}")),
            (_, Err(error)) => return Outcome::Park(format!("invalid returned lines: {error}")),
        };
        let body = CreateRefundBody {
            amount: Some(amount),
            currency: Some(job.currency),
            reason: Some("return".to_owned()),
            items: Some(items),
        };
        let key = format!("return-{}", job.return_id);
        match self
            .payments
            .post(
                &["api", "v1", "payments", &payment, "refunds"],
                Some(&key),
                &body,
                job.traceparent.as_deref(),
            )
            .await
        {
            Ok((200..=299, _)) => {
                tracing::info!(order.id = %job.order_id, return.id = %job.return_id, amount = %job.amount, "refund of a return requested");
                Outcome::Done
            }
            Ok((409, kind)) if kind == problem::IDEMPOTENCY_IN_FLIGHT => {
                Outcome::Retry("payments is still taking this refund".into())
            }
            Ok((status @ (404 | 409 | 422), kind)) => Outcome::Park(format!(
                "payments refused the refund of return {}: {status} {kind}",
                job.return_id
            )),
            Ok((status, kind)) => Outcome::Retry(format!("payments answered {status} {kind}")),
            Err(deferred) => deferred,
        }
    }
}
