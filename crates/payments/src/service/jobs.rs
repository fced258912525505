//! The durable work payments decides (refunds, reconciliations), run by the
//! shared job layer ([`platform::jobs`]); each job is written in the
//! transaction that decides it.

use std::sync::Arc;

use futures_util::future::BoxFuture;
use platform::jobs::{Kind, NewJob, Outcome, Runs};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::Payments;

// Each kind of job of schema `payments` is its payload type; its name is
// its `Kind::KIND`, its runner registered by type in `app.rs`.

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

impl Kind for VoidJob {
    const KIND: &'static str = "void";
}

pub(super) fn void_job(payment_id: Uuid, traceparent: Option<&str>) -> NewJob {
    VoidJob {
        payment_id,
        reason: None,
        traceparent: traceparent.map(str::to_owned),
    }
    .job(payment_id.to_string())
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

impl Kind for RefundJob {
    const KIND: &'static str = "refund";
}

/// Payload of a reconciliation job (enqueued in SQL by the scan of
/// payments stuck in `processing`, under this kind's name).
#[derive(Debug, Serialize, Deserialize)]
pub struct ReconcileJob {
    pub payment_id: Uuid,
}

impl Kind for ReconcileJob {
    const KIND: &'static str = "reconcile";
}

pub(super) fn refund_job(refund_id: Uuid, traceparent: Option<&str>) -> NewJob {
    RefundJob {
        refund_id: Some(refund_id),
        payment_id: None,
        reason: None,
        traceparent: traceparent.map(str::to_owned),
    }
    .job(refund_id.to_string())
}

/// Runs `payments.jobs`: refunds and reconciliations.
pub struct JobHandler {
    pub payments: Arc<Payments>,
}

impl Runs<RefundJob> for JobHandler {
    fn run(&self, job: RefundJob) -> BoxFuture<'_, Outcome> {
        Box::pin(self.payments.run_refund(job))
    }
}

impl Runs<VoidJob> for JobHandler {
    fn run(&self, job: VoidJob) -> BoxFuture<'_, Outcome> {
        Box::pin(self.payments.run_void(job))
    }
}

impl Runs<ReconcileJob> for JobHandler {
    fn run(&self, job: ReconcileJob) -> BoxFuture<'_, Outcome> {
        Box::pin(self.payments.run_reconcile(job))
    }
}
