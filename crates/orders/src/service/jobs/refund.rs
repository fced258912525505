//! `refund`: have payments refund a charge the order rejected
//! (`POST /api/v1/payments/{id}/refund`), retried until payments has
//! recorded it.

use contracts::payment::RefundBody;

use crate::domain::OrderId;
use crate::domain::events::OrderPaymentRejected;
use futures_util::future::BoxFuture;
use platform::jobs::{Kind, NewJob, Outcome, Runs};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::Jobs;

/// Payload of a `refund` job: have payments refund a charge the order
/// rejected.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RefundJob {
    pub payment_id: Uuid,
    pub order_id: Uuid,
    pub reason: String,
    #[serde(default)]
    pub traceparent: Option<String>,
}

impl Kind for RefundJob {
    const KIND: &'static str = "refund";
}

/// Refunding a charge the order rejected (keyed by the payment).
pub(in crate::service) fn refund(
    id: OrderId,
    rejected: &OrderPaymentRejected,
    traceparent: Option<&str>,
) -> NewJob {
    RefundJob {
        payment_id: rejected.payment_id,
        order_id: id.0,
        reason: rejected.reason.clone(),
        traceparent: traceparent.map(str::to_owned),
    }
    .job(rejected.payment_id.to_string())
}

impl Runs<RefundJob> for Jobs {
    fn run(&self, job: RefundJob) -> BoxFuture<'_, Outcome> {
        Box::pin(self.refund(job))
    }
}

impl Jobs {
    async fn refund(&self, job: RefundJob) -> Outcome {
        let payment = job.payment_id.to_string();
        // Payments takes a reason of at most 200 printable characters.
        let reason: String = job
            .reason
            .chars()
            .filter(|c| !c.is_control())
            .take(200)
            .collect();
        let body = RefundBody {
            reason: Some(reason),
        };
        match self
            .payments
            .post(
                &["api", "v1", "payments", &payment, "refund"],
                None,
                &body,
                job.traceparent.as_deref(),
            )
            .await
        {
            // Recorded (202), done before (200), or a failed charge: nothing
            // was taken (409 not_refundable).
            Ok((200..=299, _)) | Ok((409, _)) => {
                tracing::info!(payment.id = %job.payment_id, order.id = %job.order_id, reason = %job.reason, "refund of a rejected charge requested");
                Outcome::Done
            }
            Ok((404, kind)) => Outcome::Park(format!(
                "payments does not know payment {}: {kind}",
                job.payment_id
            )),
            Ok((status, kind)) => Outcome::Retry(format!("payments answered {status} {kind}")),
            Err(deferred) => deferred,
        }
    }
}
