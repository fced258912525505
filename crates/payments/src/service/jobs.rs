//! The durable work payments decides (refunds, reconciliations), run by the
//! shared job layer ([`platform::jobs`]); each job is written in the
//! transaction that decides it.

use std::sync::Arc;

use platform::jobs::{self, NewJob, Outcome};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::Payments;

/// Job kinds of schema `payments`.
pub const REFUND: &str = "refund";
pub const RECONCILE: &str = "reconcile";
pub const VOID: &str = "void";

/// Payload of a void job: release the authorization of a payment whose
/// order was cancelled before it was captured.
#[derive(Debug, Serialize, Deserialize)]
pub struct VoidJob {
    pub payment_id: Uuid,
    /// Why (`authorization_expired`), recorded as the payment's
    /// `failure_reason`; absent when its order was cancelled.
    #[serde(default)]
    pub reason: Option<String>,
    #[serde(default)]
    pub traceparent: Option<String>,
}

pub(super) fn void_job(payment_id: Uuid, traceparent: Option<&str>) -> NewJob {
    NewJob::now(
        VOID,
        payment_id.to_string(),
        serde_json::json!(VoidJob {
            payment_id,
            reason: None,
            traceparent: traceparent.map(str::to_owned),
        }),
    )
}

/// Payload of a refund job: the refund to make (keyed by its id). Jobs
/// written before refunds were resources name the payment instead, and
/// refund what remains of it.
#[derive(Debug, Serialize, Deserialize)]
pub struct RefundJob {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refund_id: Option<Uuid>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payment_id: Option<Uuid>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(default)]
    pub traceparent: Option<String>,
}

/// Payload of a reconciliation job.
#[derive(Debug, Serialize, Deserialize)]
pub struct ReconcileJob {
    pub payment_id: Uuid,
}

pub(super) fn refund_job(refund_id: Uuid, traceparent: Option<&str>) -> NewJob {
    NewJob::now(
        REFUND,
        refund_id.to_string(),
        serde_json::json!(RefundJob {
            refund_id: Some(refund_id),
            payment_id: None,
            reason: None,
            traceparent: traceparent.map(str::to_owned),
        }),
    )
}

/// Runs `payments.jobs`: refunds and reconciliations.
pub struct JobHandler {
    pub payments: Arc<Payments>,
}

impl jobs::Handler for JobHandler {
    fn run<'a>(&'a self, job: &'a jobs::Job) -> futures_util::future::BoxFuture<'a, Outcome> {
        Box::pin(async move {
            match job.kind.as_str() {
                REFUND => match serde_json::from_value::<RefundJob>(job.payload.clone()) {
                    Ok(refund) => self.payments.run_refund(refund).await,
                    Err(error) => Outcome::Park(format!("unreadable refund job: {error}")),
                },
                VOID => match serde_json::from_value::<VoidJob>(job.payload.clone()) {
                    Ok(void) => self.payments.run_void(void).await,
                    Err(error) => Outcome::Park(format!("unreadable void job: {error}")),
                },
                RECONCILE => match serde_json::from_value::<ReconcileJob>(job.payload.clone()) {
                    Ok(reconcile) => self.payments.run_reconcile(reconcile).await,
                    Err(error) => Outcome::Park(format!("unreadable reconcile job: {error}")),
                },
                other => Outcome::Park(format!("unknown job kind {other}")),
            }
        })
    }
}
