//! Payments' use cases.
//!
//! Charging an order:
//! 1. read the order from orders, the authority (see [`crate::orders`]);
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

use std::{sync::Arc, time::Duration};

use contracts::money::Money;
use contracts::payment::{PaymentData, PaymentEventType, PaymentStatus};
use diesel_async::AsyncConnection;
use platform::db::{self, PgPool};
use platform::jobs::{self, NewJob, Outcome};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use tokio::sync::Notify;
use uuid::Uuid;

use crate::domain::{ChargeRequest, Payment, Refusal, check_payable};
use crate::orders::OrdersClient;
use crate::provider::{PaymentProvider, ProviderError, Resolution};
use crate::store::{self, JOBS, KeyState, StoreError};

/// The caller.
#[derive(Debug, Clone)]
pub struct Actor {
    pub user_id: String,
    /// Holds `payments.admin` (services acting for a user, operators).
    pub admin: bool,
    pub traceparent: Option<String>,
}

/// A validated charge request.
#[derive(Debug, Clone)]
pub struct NewPayment {
    pub order_id: Uuid,
    /// The payer; the caller unless an admin pays on someone's behalf.
    pub user_id: String,
    pub amount: Money,
    pub method: String,
    pub token: String,
}

pub use platform::idempotency::IdempotencyKey;

/// A response ready to send: fresh, or replayed byte for byte.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
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
    #[error("the payment failed; there is nothing to refund")]
    NotRefundable,
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

/// Retry policy for transient provider failures.
#[derive(Debug, Clone)]
pub struct Retry {
    pub attempts: u32,
    pub backoff: Duration,
}

/// Idempotency-Key policy.
#[derive(Debug, Clone)]
pub struct KeyPolicy {
    pub ttl: time::Duration,
    pub stale_after: time::Duration,
}

/// Job kinds of schema `payments`.
pub const REFUND: &str = "refund";
pub const RECONCILE: &str = "reconcile";

/// Payload of a refund job.
#[derive(Debug, Serialize, Deserialize)]
pub struct RefundJob {
    pub payment_id: Uuid,
    /// Why: `order_cancelled`, or what orders said when it rejected the charge.
    pub reason: String,
    #[serde(default)]
    pub traceparent: Option<String>,
}

/// Payload of a reconciliation job.
#[derive(Debug, Serialize, Deserialize)]
pub struct ReconcileJob {
    pub payment_id: Uuid,
}

/// What asking for a refund did.
#[derive(Debug)]
pub enum RefundRequested {
    /// Recorded: the refund job will do it.
    Accepted(Payment),
    /// It was refunded before.
    AlreadyRefunded(Payment),
}

pub struct Payments {
    pool: PgPool,
    provider: Arc<dyn PaymentProvider>,
    orders: OrdersClient,
    retry: Retry,
    keys: KeyPolicy,
    /// Wakes this instance's job worker when work is enqueued.
    jobs: Arc<Notify>,
}

/// What step 2 decided.
enum Start {
    Charge(Payment),
    Replay(Reply),
}

fn now() -> OffsetDateTime {
    let now = OffsetDateTime::now_utc();
    now.replace_nanosecond(now.nanosecond() / 1_000 * 1_000)
        .unwrap_or(now)
}

pub fn payment_data(payment: &Payment) -> PaymentData {
    PaymentData {
        id: payment.id,
        order_id: payment.order_id,
        user_id: payment.user_id.clone(),
        amount: payment.amount.to_string(),
        currency: payment.amount.currency().code().to_owned(),
        method: payment.method.clone(),
        status: payment.status,
        failure_reason: payment.failure_reason.clone(),
        provider_reference: payment.provider_reference.clone(),
        created_at: payment.created_at,
        updated_at: payment.updated_at,
    }
}

fn render(payment: &Payment) -> anyhow::Result<Vec<u8>> {
    Ok(serde_json::to_vec(&payment_data(payment))?)
}

fn refund_job(payment_id: Uuid, reason: &str, traceparent: Option<&str>) -> NewJob {
    NewJob::now(
        REFUND,
        payment_id.to_string(),
        serde_json::json!(RefundJob {
            payment_id,
            reason: reason.to_owned(),
            traceparent: traceparent.map(str::to_owned),
        }),
    )
}

impl Payments {
    pub fn new(
        pool: PgPool,
        provider: Arc<dyn PaymentProvider>,
        orders: OrdersClient,
        retry: Retry,
        keys: KeyPolicy,
        jobs: Arc<Notify>,
    ) -> Self {
        Self {
            pool,
            provider,
            orders,
            retry,
            keys,
            jobs,
        }
    }

    /// Charges an order (`POST /api/v1/payments`).
    pub async fn create(
        &self,
        actor: &Actor,
        request: NewPayment,
        key: Option<IdempotencyKey>,
    ) -> Result<Reply, PaymentError> {
        if request.user_id != actor.user_id && !actor.admin {
            return Err(PaymentError::Forbidden(
                "only an admin may pay on another user's behalf".into(),
            ));
        }
        // A read, before anything is reserved; its answer is used only if
        // the key turns out to be new (a replay answers whatever it says).
        let order = self.orders.order(request.order_id).await;
        let mut conn = db::connection(&self.pool).await?;
        let owner = actor.user_id.clone();
        let start = {
            let (request, key, owner, keys, order) = (&request, &key, &owner, &self.keys, &order);
            conn.transaction(async move |conn| -> Result<Start, PaymentError> {
                let now = now();
                let payment_id = Uuid::now_v7();
                if let Some(key) = key {
                    match store::claim_key(
                        conn,
                        owner,
                        &key.key,
                        &key.request_hash,
                        payment_id,
                        now,
                        keys.ttl,
                        keys.stale_after,
                    )
                    .await?
                    {
                        KeyState::New => {}
                        KeyState::Abandoned { payment_id: None } => {
                            store::set_key_payment(conn, owner, &key.key, payment_id).await?;
                        }
                        KeyState::Done { status, body } => {
                            return Ok(Start::Replay(Reply {
                                status,
                                body,
                                replayed: true,
                            }));
                        }
                        KeyState::InFlight => return Err(PaymentError::KeyInFlight),
                        KeyState::Mismatch => return Err(PaymentError::KeyMismatch),
                        KeyState::Abandoned {
                            payment_id: Some(id),
                        } => {
                            let payment =
                                store::find_payment(conn, id).await?.ok_or_else(|| {
                                    anyhow::anyhow!("key points at missing payment {id}")
                                })?;
                            return Ok(if payment.status == PaymentStatus::Processing {
                                Start::Charge(payment)
                            } else {
                                Start::Replay(Reply {
                                    status: 201,
                                    body: render(&payment)?,
                                    replayed: true,
                                })
                            });
                        }
                    }
                }
                let order = order
                    .as_ref()
                    .map_err(|error| PaymentError::OrdersUnavailable(format!("{error:#}")))?;
                check_payable(
                    order.as_ref(),
                    ChargeRequest {
                        caller: &actor.user_id,
                        admin: actor.admin,
                        payer: &request.user_id,
                        amount: request.amount,
                    },
                )?;
                let payment = Payment::start(
                    payment_id,
                    request.order_id,
                    request.user_id.clone(),
                    request.amount,
                    request.method.clone(),
                    now,
                );
                store::insert_payment(conn, &payment).await?;
                Ok(Start::Charge(payment))
            })
            .await
        };
        let payment = match start {
            Ok(Start::Replay(reply)) => return Ok(reply),
            Ok(Start::Charge(payment)) => payment,
            Err(PaymentError::Refused(refusal)) => {
                metrics::counter!("payments_refused_total", "reason" => refusal_kind(&refusal))
                    .increment(1);
                return Err(PaymentError::Refused(refusal));
            }
            Err(other) => return Err(other),
        };
        drop(conn);

        let outcome = self.charge(&payment, &request.token).await;
        let key = key.as_ref().map(|key| (owner.as_str(), key.key.as_str()));
        let (_, body) = self
            .record_outcome(payment, outcome, key, actor.traceparent.as_deref())
            .await?;
        Ok(Reply {
            status: 201,
            body,
            replayed: false,
        })
    }

    /// Settles a `processing` payment with the provider's outcome (reference
    /// or failure reason); returns the payment as it now stands and its
    /// rendering. If another path settled it first, that outcome stands.
    async fn record_outcome(
        &self,
        payment: Payment,
        outcome: Result<String, String>,
        key: Option<(&str, &str)>,
        traceparent: Option<&str>,
    ) -> Result<(Payment, Vec<u8>), PaymentError> {
        let settled = match outcome {
            Ok(reference) => payment.succeeded(reference, now()),
            Err(reason) => payment.failed(reason, now()),
        }
        .map_err(anyhow::Error::from)?;
        let body = render(&settled)?;
        let event_type = match settled.status {
            PaymentStatus::Succeeded => PaymentEventType::Successful,
            _ => PaymentEventType::Failed,
        };
        let data = serde_json::to_value(payment_data(&settled)).map_err(anyhow::Error::from)?;
        let mut conn = db::connection(&self.pool).await?;
        let (current, body, refund) = {
            let (settled, body, data) = (&settled, &body, &data);
            conn.transaction(
                async move |conn| -> Result<(Payment, Vec<u8>, bool), PaymentError> {
                    let outcome = store::settle(
                        conn,
                        settled,
                        event_type.as_str(),
                        data,
                        traceparent,
                        key,
                        201,
                        body,
                    )
                    .await?;
                    if !outcome.won {
                        let current = store::find_payment(conn, settled.id)
                            .await?
                            .ok_or_else(|| anyhow::anyhow!("payment {} vanished", settled.id))?;
                        let body = render(&current)?;
                        store::store_response(conn, key, 201, &body).await?;
                        return Ok((current, body, false));
                    }
                    let refund =
                        settled.status == PaymentStatus::Succeeded && outcome.order_cancelled;
                    if refund {
                        // The order was cancelled while it was being charged.
                        jobs::enqueue(
                            conn,
                            JOBS,
                            &refund_job(settled.id, "order_cancelled", traceparent),
                        )
                        .await?;
                    }
                    Ok((settled.clone(), body.clone(), refund))
                },
            )
            .await?
        };
        if refund {
            self.jobs.notify_one();
        }
        tracing::info!(
            payment.id = %current.id,
            order.id = %current.order_id,
            payment.status = current.status.as_str(),
            "payment settled"
        );
        metrics::counter!("payments_total", "outcome" => current.status.as_str()).increment(1);
        Ok((current, body))
    }

    /// Charges through the provider, retrying transient failures; returns the
    /// charge reference or the failure reason.
    async fn charge(&self, payment: &Payment, token: &str) -> Result<String, String> {
        let attempts = self.retry.attempts.max(1);
        for attempt in 1..=attempts {
            match self
                .provider
                .charge(payment.id, token, payment.amount)
                .await
            {
                Ok(reference) => return Ok(reference),
                Err(ProviderError::Declined(reason)) => return Err(reason),
                Err(ProviderError::Transient(reason)) if attempt == attempts => {
                    return Err(reason);
                }
                Err(ProviderError::Transient(reason)) => {
                    tracing::warn!(payment.id = %payment.id, attempt, reason, "provider failed; retrying");
                    tokio::time::sleep(jobs::backoff(
                        i32::try_from(attempt).unwrap_or(1),
                        self.retry.backoff,
                        self.retry.backoff * 16,
                    ))
                    .await;
                }
            }
        }
        Err("processing_error".into())
    }

    /// An order was cancelled (`order.cancelled`): records it, so a charge
    /// completing later is refunded at once, and enqueues the refund of every
    /// succeeded payment of the order, atomically with recording `consumed`
    /// (the triggering event) in the inbox. Returns `false` if that event was
    /// already consumed.
    pub async fn refund_order(
        &self,
        order_id: Uuid,
        consumed: Option<(Uuid, &str)>,
        traceparent: Option<&str>,
    ) -> Result<bool, PaymentError> {
        let mut conn = db::connection(&self.pool).await?;
        let enqueued = conn
            .transaction(async move |conn| -> Result<Option<usize>, PaymentError> {
                if let Some((event_id, event_type)) = consumed
                    && !store::record_consumed(conn, event_id, event_type).await?
                {
                    return Ok(None);
                }
                store::mark_order_cancelled(conn, order_id).await?;
                let mut enqueued = 0;
                for payment in store::lock_payments_of_order(conn, order_id).await? {
                    if payment.status == PaymentStatus::Succeeded {
                        jobs::enqueue(
                            conn,
                            JOBS,
                            &refund_job(payment.id, "order_cancelled", traceparent),
                        )
                        .await?;
                        enqueued += 1;
                    }
                }
                Ok(Some(enqueued))
            })
            .await?;
        if enqueued.is_some_and(|n| n > 0) {
            self.jobs.notify_one();
        }
        Ok(enqueued.is_some())
    }

    /// Asks for a payment to be refunded (`POST /api/v1/payments/{id}/refund`:
    /// orders when it rejects a charge, or an operator). Recorded as a job;
    /// asking again changes nothing.
    pub async fn request_refund(
        &self,
        actor: &Actor,
        id: Uuid,
        reason: &str,
    ) -> Result<RefundRequested, PaymentError> {
        if !actor.admin {
            return Err(PaymentError::Forbidden(
                "only an admin or the orders service may refund a payment".into(),
            ));
        }
        let mut conn = db::connection(&self.pool).await?;
        let traceparent = actor.traceparent.as_deref();
        let requested = conn
            .transaction(async move |conn| -> Result<RefundRequested, PaymentError> {
                let payment = store::find_payment(conn, id)
                    .await?
                    .ok_or(PaymentError::NotFound)?;
                match payment.status {
                    PaymentStatus::Refunded => Ok(RefundRequested::AlreadyRefunded(payment)),
                    PaymentStatus::Failed => Err(PaymentError::NotRefundable),
                    PaymentStatus::Pending
                    | PaymentStatus::Processing
                    | PaymentStatus::Succeeded => {
                        jobs::enqueue(conn, JOBS, &refund_job(id, reason, traceparent)).await?;
                        Ok(RefundRequested::Accepted(payment))
                    }
                }
            })
            .await?;
        if matches!(requested, RefundRequested::Accepted(_)) {
            self.jobs.notify_one();
        }
        Ok(requested)
    }

    /// The refund job: refunds a succeeded payment once (the provider
    /// deduplicates per payment, and the `succeeded` → `refunded`
    /// compare-and-set records it and its `payment.refunded` once).
    pub async fn run_refund(&self, job: RefundJob) -> Outcome {
        let found = async {
            let mut conn = db::connection(&self.pool).await?;
            Ok::<_, PaymentError>(store::find_payment(&mut conn, job.payment_id).await?)
        }
        .await;
        let payment = match found {
            Ok(Some(payment)) => payment,
            Ok(None) => return Outcome::Park(format!("no payment {}", job.payment_id)),
            Err(error) => return Outcome::Retry(error.to_string()),
        };
        match payment.status {
            PaymentStatus::Refunded | PaymentStatus::Failed => return Outcome::Done,
            PaymentStatus::Pending | PaymentStatus::Processing => {
                return Outcome::Retry("the charge has not settled yet".into());
            }
            PaymentStatus::Succeeded => {}
        }
        let reference = payment.provider_reference.clone().unwrap_or_default();
        let refund = match self
            .provider
            .refund(payment.id, &reference, payment.amount)
            .await
        {
            Ok(refund) => refund,
            Err(error) => return Outcome::Retry(format!("refund failed: {error}")),
        };
        let order_id = payment.order_id;
        let recorded = async {
            let refunded = payment
                .refunded(refund, now())
                .map_err(anyhow::Error::from)?;
            let data =
                serde_json::to_value(payment_data(&refunded)).map_err(anyhow::Error::from)?;
            let conn = db::connection(&self.pool).await?;
            let moved = store::transition(
                &conn,
                &refunded,
                PaymentStatus::Succeeded,
                PaymentEventType::Refunded.as_str(),
                &data,
                job.traceparent.as_deref(),
            )
            .await?;
            Ok::<_, PaymentError>(moved)
        }
        .await;
        match recorded {
            Ok(true) => {
                tracing::info!(payment.id = %job.payment_id, order.id = %order_id, reason = %job.reason, "payment refunded");
                metrics::counter!("payments_total", "outcome" => "refunded").increment(1);
                Outcome::Done
            }
            Ok(false) => Outcome::Done,
            Err(error) => Outcome::Retry(error.to_string()),
        }
    }

    /// The reconciliation job: settles a payment left `processing` (by a
    /// crash between the provider's answer and the settle) with what the
    /// provider says happened. A charge the provider never made is voided
    /// there first, so it cannot succeed later.
    pub async fn run_reconcile(&self, job: ReconcileJob) -> Outcome {
        let found = async {
            let mut conn = db::connection(&self.pool).await?;
            Ok::<_, PaymentError>(store::find_payment(&mut conn, job.payment_id).await?)
        }
        .await;
        let payment = match found {
            Ok(Some(payment)) if payment.status == PaymentStatus::Processing => payment,
            Ok(_) => return Outcome::Done,
            Err(error) => return Outcome::Retry(error.to_string()),
        };
        let outcome = match self.provider.resolve(payment.id).await {
            Ok(Resolution::Charged(reference)) => Ok(reference),
            Ok(Resolution::Declined(reason)) => Err(reason),
            Ok(Resolution::Voided) => Err("abandoned".to_owned()),
            Err(error) => return Outcome::Retry(error.to_string()),
        };
        match self.record_outcome(payment, outcome, None, None).await {
            Ok((settled, _)) => {
                tracing::warn!(payment.id = %settled.id, payment.status = settled.status.as_str(), "payment reconciled after an interrupted charge");
                metrics::counter!("payments_reconciled_total", "outcome" => settled.status.as_str())
                    .increment(1);
                Outcome::Done
            }
            Err(error) => Outcome::Retry(error.to_string()),
        }
    }

    /// Enqueues the reconciliation of payments `processing` for longer than
    /// `stale_after`; returns how many.
    pub async fn find_stuck(&self, stale_after: time::Duration) -> Result<usize, PaymentError> {
        let mut conn = db::connection(&self.pool).await?;
        let found = store::enqueue_stuck(&mut conn, now() - stale_after).await?;
        if found > 0 {
            self.jobs.notify_one();
        }
        Ok(found)
    }

    pub async fn find(&self, actor: &Actor, id: Uuid) -> Result<Payment, PaymentError> {
        let mut conn = db::connection(&self.pool).await?;
        store::find_payment(&mut conn, id)
            .await?
            .filter(|payment| actor.admin || payment.user_id == actor.user_id)
            .ok_or(PaymentError::NotFound)
    }

    pub async fn list(
        &self,
        actor: &Actor,
        order_id: Option<Uuid>,
        limit: i64,
    ) -> Result<Vec<Payment>, PaymentError> {
        let mut conn = db::connection(&self.pool).await?;
        let user = (!actor.admin).then_some(actor.user_id.as_str());
        Ok(store::list_payments(&mut conn, user, order_id, limit).await?)
    }

    /// Forgets expired idempotency keys.
    pub async fn sweep_keys(&self) -> Result<usize, PaymentError> {
        let mut conn = db::connection(&self.pool).await?;
        Ok(store::sweep_keys(&mut conn, now(), self.keys.ttl).await?)
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
                RECONCILE => match serde_json::from_value::<ReconcileJob>(job.payload.clone()) {
                    Ok(reconcile) => self.payments.run_reconcile(reconcile).await,
                    Err(error) => Outcome::Park(format!("unreadable reconcile job: {error}")),
                },
                other => Outcome::Park(format!("unknown job kind {other}")),
            }
        })
    }
}
