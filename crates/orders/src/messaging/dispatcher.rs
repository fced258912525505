//! Orders' durable work, run by the shared job layer ([`platform::jobs`]):
//!
//! - `pay`: charge an order through `POST /api/v1/payments` (service token,
//!   `Idempotency-Key` derived from the order and attempt). An answer
//!   (`201`, or `409 payment_exists`) finishes it — the outcome arrives as a
//!   `payment.*` event; payments down, slow or answering 5xx is retried with
//!   back-off and jitter (never given up silently); payments refusing the
//!   request itself (`4xx`) is recorded as `order.payment_failed`.
//! - `refund`: have payments refund a charge the order rejected
//!   (`POST /api/v1/payments/{id}/refund`), retried until payments has
//!   recorded it.
//! - `release_stock`: release a cancelled order's reservation at the
//!   catalogue.
//!
//! Each job is written in the transaction that decides it, and the provider
//! token of a `pay` job is deleted with the job once payments has it.

use std::{sync::Arc, time::Duration};

use futures_util::future::BoxFuture;
use platform::jobs::{Outcome, Runs};
use platform::{auth::ServiceCredentials, client::ServiceClient, resilience::RetryPolicy};
use secrecy::SecretString;
use serde::Deserialize;

use contracts::{
    money::Amount,
    payment::{
        CaptureBody, CaptureMethod, CreatePaymentBody, CreateRefundBody, RefundBody, RefundLine,
    },
    problem,
};

use crate::domain::{Currency, Money, OrderId};
use crate::service::{
    CaptureJob, Orders, PayJob, RefundJob, RefundReturnJob, ReleaseJob, RestockJob,
};

/// `payments:` section of the orders configuration.
#[derive(Debug, Clone, Deserialize)]
pub struct PaymentsClientConfig {
    /// Base URL of the payments service.
    pub url: String,
    pub timeout_ms: u64,
    /// A token for payments with `payments.write payments.admin`. When unset,
    /// one is minted with `auth.hs256_secret` (development).
    #[serde(default)]
    pub service_token: Option<SecretString>,
    /// The shop's capture policy: `automatic` (the money is taken when the
    /// order is placed) or `manual` (held then, taken when it ships).
    #[serde(default)]
    pub capture: CaptureMethod,
}

/// Scopes orders needs at payments: charge for users, ask for refunds.
pub const SCOPES: &[&str] = &["payments.write", "payments.admin"];

/// Runs orders' jobs.
pub struct Dispatcher {
    orders: Arc<Orders>,
    capture: CaptureMethod,
    /// Payments, called once per attempt: the job layer retries.
    payments: ServiceClient,
}

impl Dispatcher {
    pub fn new(
        orders: Arc<Orders>,
        config: &PaymentsClientConfig,
        credentials: ServiceCredentials,
    ) -> anyhow::Result<Self> {
        let payments = ServiceClient::new(
            &config.url,
            Duration::from_millis(config.timeout_ms),
            credentials,
            RetryPolicy::none(),
        )?;
        Ok(Self {
            orders,
            capture: config.capture,
            payments,
        })
    }

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
            capture_method: Some(self.capture),
        };
        let key = format!("order-{}-attempt-{}", job.order_id, job.attempt);
        let (status, kind) = match self
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

    /// POSTs to payments; the status and the problem `type`, or the retry
    /// when payments could not be reached (transport failure) or asked to be
    /// called back later (`429`/`503` with `Retry-After`).
    async fn post(
        &self,
        path: &[&str],
        key: Option<&str>,
        body: &(impl serde::Serialize + Sync),
        traceparent: Option<&str>,
    ) -> Result<(u16, String), Outcome> {
        let url = self
            .payments
            .url(path)
            .map_err(|error| Outcome::Retry(error.to_string()))?;
        let response = self
            .payments
            .send(|http| {
                let mut call = http.post(url.clone()).json(body);
                if let Some(key) = key {
                    call = call.header("Idempotency-Key", key);
                }
                if let Some(traceparent) = traceparent {
                    call = call.header("traceparent", traceparent);
                }
                call
            })
            .await
            .map_err(|error| match error.retry_after {
                Some(after) => Outcome::RetryAfter(after, format!("payments {error}")),
                None => Outcome::Retry(format!("payments {error}")),
            })?;
        let status = response.status().as_u16();
        if response.status().is_success() {
            return Ok((status, String::new()));
        }
        // Overloaded or limited, payments says when to come back
        // (`Retry-After` in seconds): the job waits that long, not less.
        let retry_after = platform::client::retry_after(response.headers());
        let problem: serde_json::Value = response.json().await.unwrap_or_default();
        let kind = problem["type"].as_str().unwrap_or_default();
        if let (429 | 503, Some(after)) = (status, retry_after) {
            return Err(Outcome::RetryAfter(
                after,
                format!("payments answered {status} {kind}"),
            ));
        }
        // A provider's refusal says why (`provider_declined: capture_declined`).
        Ok((
            status,
            match problem["reason"].as_str() {
                Some(reason) => format!("{kind}: {reason}"),
                None => kind.to_owned(),
            },
        ))
    }
}

// Each kind of orders' job, run by the dispatcher (registered by type in
// `app.rs`).

impl Runs<PayJob> for Dispatcher {
    fn run(&self, job: PayJob) -> BoxFuture<'_, Outcome> {
        Box::pin(self.pay(job))
    }
}

impl Runs<RefundJob> for Dispatcher {
    fn run(&self, job: RefundJob) -> BoxFuture<'_, Outcome> {
        Box::pin(self.refund(job))
    }
}

impl Runs<CaptureJob> for Dispatcher {
    fn run(&self, job: CaptureJob) -> BoxFuture<'_, Outcome> {
        Box::pin(self.capture(job))
    }
}

impl Runs<RefundReturnJob> for Dispatcher {
    fn run(&self, job: RefundReturnJob) -> BoxFuture<'_, Outcome> {
        Box::pin(self.refund_return(job))
    }
}

impl Runs<RestockJob> for Dispatcher {
    fn run(&self, job: RestockJob) -> BoxFuture<'_, Outcome> {
        Box::pin(self.orders.restock(job))
    }
}

impl Runs<ReleaseJob> for Dispatcher {
    fn run(&self, job: ReleaseJob) -> BoxFuture<'_, Outcome> {
        Box::pin(self.orders.release_stock(job))
    }
}
