//! `capture`: have payments capture the authorization of an order being
//! shipped (keyed by the payment: captured once).

use contracts::{money::Amount, payment::CaptureBody};

use crate::domain::OrderId;
use crate::domain::events::OrderCaptureRequested;
use futures_util::future::BoxFuture;
use platform::jobs::{Kind, NewJob, Outcome, Runs};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::Jobs;

/// Payload of a `capture` job: have payments capture the authorization of
/// an order being shipped.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CaptureJob {
    pub payment_id: Uuid,
    pub order_id: Uuid,
    /// Decimal string in the order's currency.
    pub amount: String,
    #[serde(default)]
    pub traceparent: Option<String>,
}

impl Kind for CaptureJob {
    const KIND: &'static str = "capture";
}

/// Capturing an order's authorization at shipment (keyed by the payment:
/// captured once).
pub(in crate::service) fn capture(
    id: OrderId,
    requested: &OrderCaptureRequested,
    traceparent: Option<&str>,
) -> NewJob {
    CaptureJob {
        payment_id: requested.payment_id,
        order_id: id.0,
        amount: requested.amount.to_string(),
        traceparent: traceparent.map(str::to_owned),
    }
    .job(requested.payment_id.to_string())
}

impl Runs<CaptureJob> for Jobs {
    fn run(&self, job: CaptureJob) -> BoxFuture<'_, Outcome> {
        Box::pin(self.capture(job))
    }
}

impl Jobs {
    /// Captures the authorization of an order being shipped. Captured (now
    /// or before) finishes it: `payment.captured` ships the order. Refused
    /// (declined by the provider, no longer authorized, more than held) is
    /// recorded as `order.capture_failed`, the order left unshipped.
    async fn capture(&self, job: CaptureJob) -> Outcome {
        let payment = job.payment_id.to_string();
        let amount = match Amount::parse(&job.amount) {
            Ok(amount) => amount,
            Err(error) => return Outcome::Park(format!("invalid capture amount: {error}")),
        };
        let body = CaptureBody {
            amount: Some(amount),
        };
        match self
            .payments
            .post(
                &["api", "v1", "payments", &payment, "capture"],
                None,
                &body,
                job.traceparent.as_deref(),
            )
            .await
        {
            Ok((200..=299, _)) => Outcome::Done,
            Ok((404, kind)) => Outcome::Park(format!(
                "payments does not know payment {}: {kind}",
                job.payment_id
            )),
            Ok((status @ (409 | 422), kind)) => {
                tracing::warn!(payment.id = %job.payment_id, order.id = %job.order_id, status, kind = %kind, "capture at shipment refused");
                match self
                    .orders
                    .record_capture_failed(OrderId(job.order_id), job.payment_id, kind)
                    .await
                {
                    Ok(()) => Outcome::Done,
                    Err(error) => Outcome::Retry(error.to_string()),
                }
            }
            Ok((status, kind)) => Outcome::Retry(format!("payments answered {status} {kind}")),
            Err(deferred) => deferred,
        }
    }
}
