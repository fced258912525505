//! `pay`: charge an order through `POST /api/v1/payments` (service token,
//! `Idempotency-Key` derived from the order and attempt). An answer
//! (`201`, or `409 payment_exists`) finishes it — the outcome arrives as a
//! `payment.*` event; payments down, slow or answering 5xx is retried with
//! back-off and jitter (never given up silently); payments refusing the
//! request itself (`4xx`) is recorded as `order.payment_failed`. The
//! provider token is deleted with the job once payments has it.

use contracts::{money::Amount, payment::CreatePaymentBody, problem};

use crate::domain::{Currency, Money, OrderId};
use futures_util::future::BoxFuture;
use platform::jobs::{Kind, NewJob, Outcome, Runs};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::Jobs;

/// Payload of a `pay` job: charge the order through payments.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PayJob {
    pub order_id: Uuid,
    pub attempt: i32,
    pub user_id: String,
    pub amount_minor: i64,
    pub currency: String,
    pub method: String,
    /// The provider token; deleted with the job once payments has it.
    pub token: String,
    #[serde(default)]
    pub traceparent: Option<String>,
}

impl Kind for PayJob {
    const KIND: &'static str = "pay";
}

/// The first charge of a new order.
pub(in crate::service) fn pay(job: PayJob) -> NewJob {
    job.job(format!("{}:{}", job.order_id, job.attempt))
}

impl Runs<PayJob> for Jobs {
    fn run(&self, job: PayJob) -> BoxFuture<'_, Outcome> {
        Box::pin(self.pay(job))
    }
}

impl Jobs {
    async fn pay(&self, job: PayJob) -> Outcome {
        let amount = match Currency::parse(&job.currency)
            .and_then(|currency| Money::from_minor(job.amount_minor, currency))
        {
            Ok(amount) => amount,
            Err(error) => return Outcome::Park(format!("invalid amount: {error}")),
        };
        let Ok(decimal) = Amount::parse(&amount.to_string()) else {
            return Outcome::Park(format!("unsendable amount {amount}"));
        };
        let body = CreatePaymentBody {
            order_id: job.order_id,
            amount: decimal,
            currency: job.currency,
            method: job.method,
            token: job.token,
            user_id: Some(job.user_id),
            capture_method: Some(self.payments.capture),
        };
        let key = format!("order-{}-attempt-{}", job.order_id, job.attempt);
        let (status, kind) = match self
            .payments
            .post(
                &["api", "v1", "payments"],
                Some(&key),
                &body,
                job.traceparent.as_deref(),
            )
            .await
        {
            Ok(answer) => answer,
            Err(deferred) => return deferred,
        };
        match (status, kind.as_str()) {
            (200..=299, _) | (409, problem::PAYMENT_EXISTS) => Outcome::Done,
            (409, problem::IDEMPOTENCY_IN_FLIGHT) | (429, _) | (500.., _) => {
                Outcome::Retry(format!("payments answered {status} {kind}"))
            }
            (400..=499, _) => {
                // Payments refused the request itself (the order changed or
                // was cancelled since): the failure goes into its history.
                let reason = format!("payments refused the request: {kind}");
                match self
                    .orders
                    .record_payment_refused(OrderId(job.order_id), reason)
                    .await
                {
                    Ok(()) => Outcome::Done,
                    Err(error) => Outcome::Retry(error.to_string()),
                }
            }
            _ => Outcome::Retry(format!("payments answered {status} {kind}")),
        }
    }
}
