//! Payments' use cases, one per file:
//! [`charge`] (create a payment), [`refund`] (cancelled orders, refund
//! requests, the refund job), [`reconcile`] (payments a crash left
//! `processing`), [`read`]; [`jobs`] holds the durable work they decide.
//!
//! Charging an order:
//!
//! Charging an order:
//! 1. read the order from orders, the authority (see [`crate::orders`]),
//!    unless orders itself asks and states the owner and total;
//! 2. one transaction claims the `Idempotency-Key` (a completed request is
//!    replayed whatever has changed since; one in flight is a 409), checks
//!    the order is payable by the caller at exactly its total, and inserts
//!    the payment as `processing` (the unique index on live payments per
//!    order refuses a second charge). A refusal rolls all of it back: nothing
//!    is charged and nothing is stored;
//! 3. the provider charges, keyed by the payment id, retrying transient
//!    failures with back-off;
//! 4. one transaction settles the payment by compare-and-set (`processing` →
//!    `succeeded`/`failed`, so a late outcome never overwrites a recorded
//!    one), appends its event and stores the response under the key; a
//!    success for an order cancelled meanwhile enqueues its refund.
//!
//! Money is never held by mistake: every refund is a durable job, recorded in
//! the transaction that decides it (a cancellation consumed, a settle finding
//! the order cancelled, orders rejecting a charge) and retried until done. A
//! payment left `processing` by a crash between 3 and 4 is reconciled by a
//! job that asks the provider what happened (voiding a charge never made).

mod capture;
mod charge;
pub mod jobs;
mod read;
mod reconcile;
mod refund;

use std::sync::Arc;

use contracts::money::Money;
use contracts::payment::{CaptureMethod, PaymentData};
use platform::db::PgPool;
use platform::relay::OutboxSignal;
use platform::resilience::RetryPolicy;
use tokio::sync::Notify;
use uuid::Uuid;

use crate::domain::{CaptureRefusal, Payment, RefundRefusal, Refusal};
use crate::orders::OrdersClient;
use crate::provider::PaymentProvider;
use crate::store::StoreError;

pub use capture::{CaptureAnswer, capture_refusal_kind};
pub use jobs::{JobHandler, ReconcileJob, RefundJob, VoidJob};
pub use platform::actor::Actor;
pub use platform::idempotency::{IdempotencyKey, KeyPolicy};
pub use refund::{RefundAsk, RefundRequested, refund_data, refund_refusal_kind};

/// The subject payments acts under at orders.
pub const SYSTEM: &str = contracts::payment::SERVICE_SUBJECT;

/// A validated charge request.
#[derive(Debug, Clone)]
pub struct NewPayment {
    pub order_id: Uuid,
    /// The payer; the caller unless an admin pays on someone's behalf.
    pub user_id: String,
    pub amount: Money,
    pub method: String,
    pub token: String,
    /// Take the money now, or hold it to be captured later.
    pub capture_method: CaptureMethod,
}

/// A created payment as its answer: fresh, or replayed byte for byte.
#[derive(Debug)]
pub struct Reply {
    pub body: Vec<u8>,
    pub replayed: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum PaymentError {
    #[error("no such payment")]
    NotFound,
    #[error("{0}")]
    Forbidden(String),
    /// The order may not be charged as asked.
    #[error(transparent)]
    Refused(#[from] Refusal),
    #[error("the order already has a payment in progress or completed")]
    OrderAlreadyHasPayment,
    /// The capture may not be made as asked.
    #[error(transparent)]
    CaptureRefused(#[from] CaptureRefusal),
    /// Only an authorized payment can be voided (a captured one is
    /// refunded instead).
    #[error("a {} payment cannot be voided", .0.as_str())]
    NotVoidable(contracts::payment::PaymentStatus),
    /// The provider declined the capture or void; the payment is unchanged.
    #[error("the provider declined: {0}")]
    ProviderDeclined(String),
    /// The provider kept failing; nothing changed, try again.
    #[error("the provider is unavailable: {0}")]
    ProviderUnavailable(String),
    /// The refund may not be taken as asked.
    #[error(transparent)]
    RefundRefused(#[from] RefundRefusal),
    #[error("a request with this Idempotency-Key is still being processed")]
    KeyInFlight,
    #[error("this Idempotency-Key was used with a different request")]
    KeyMismatch,
    #[error("orders could not be asked about the order: {0}")]
    OrdersUnavailable(String),
    #[error(transparent)]
    Unexpected(#[from] anyhow::Error),
}

impl From<StoreError> for PaymentError {
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::OrderAlreadyHasPayment => PaymentError::OrderAlreadyHasPayment,
            StoreError::Unexpected(error) => PaymentError::Unexpected(error),
        }
    }
}

impl From<diesel::result::Error> for PaymentError {
    fn from(error: diesel::result::Error) -> Self {
        StoreError::from(error).into()
    }
}

#[derive(Clone)]
pub struct Payments {
    pool: PgPool,
    provider: Arc<dyn PaymentProvider>,
    orders: Arc<OrdersClient>,
    /// Transient provider failures.
    retry: RetryPolicy,
    keys: KeyPolicy,
    /// Wakes this instance's job worker when work is enqueued.
    jobs: Arc<Notify>,
    /// Wakes the outbox relay when events are committed.
    outbox: OutboxSignal,
}

pub fn payment_data(payment: &Payment) -> PaymentData {
    PaymentData {
        id: payment.id,
        order_id: payment.order_id,
        user_id: payment.user_id.clone(),
        amount: payment.amount.to_string(),
        currency: payment.amount.currency().code().to_owned(),
        method: payment.method.clone(),
        capture_method: Some(payment.capture_method),
        status: payment.status,
        failure_reason: payment.failure_reason.clone(),
        provider_reference: payment.provider_reference.clone(),
        captured_amount: Some(payment.captured.to_string()),
        refunded_amount: Some(payment.refunded.to_string()),
        refund: None,
        created_at: payment.created_at,
        updated_at: payment.updated_at,
    }
}

pub(crate) fn render(payment: &Payment) -> anyhow::Result<Vec<u8>> {
    Ok(serde_json::to_vec(&payment_data(payment))?)
}

impl Payments {
    /// The same use cases on another pool (an HTTP worker's own); clients
    /// and settings stay shared.
    pub fn on_pool(&self, pool: PgPool) -> Self {
        Self {
            pool,
            ..self.clone()
        }
    }

    pub fn new(
        pool: PgPool,
        provider: Arc<dyn PaymentProvider>,
        orders: OrdersClient,
        retry: RetryPolicy,
        keys: KeyPolicy,
        jobs: Arc<Notify>,
        outbox: OutboxSignal,
    ) -> Self {
        Self {
            pool,
            provider,
            orders: Arc::new(orders),
            retry,
            keys,
            jobs,
            outbox,
        }
    }
}

/// The problem `type` of a refusal, also its metric label.
pub fn refusal_kind(refusal: &Refusal) -> &'static str {
    match refusal {
        Refusal::OrderNotFound => "order_not_found",
        Refusal::NotPayable(_) => "order_not_payable",
        Refusal::AmountMismatch { .. } => "amount_mismatch",
    }
}
