//! Payments' use cases.
//!
//! Charging is three steps, so no lock or transaction spans the provider call:
//! 1. one transaction claims the `Idempotency-Key` and inserts the payment as
//!    `processing` (the unique index on live payments per order refuses a
//!    second charge of the same order);
//! 2. the provider charges, retrying transient failures with back-off;
//! 3. one transaction records the outcome, appends `payment.successful` or
//!    `payment.failed` to the outbox, and stores the response under the key.
//!
//! A crash between 1 and 3 leaves the key "in flight"; after
//! `stale_after` a retry with the same key takes the payment over and charges
//! it again under the same payment id, which the provider deduplicates, so the
//! order is still charged at most once.

use std::{sync::Arc, time::Duration};

use contracts::money::Money;
use contracts::payment::{PaymentData, PaymentEventType, PaymentStatus};
use diesel_async::{AsyncConnection, AsyncPgConnection};
use platform::db::{self, PgPool};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::domain::Payment;
use crate::provider::{PaymentProvider, ProviderError};
use crate::store::{self, KeyState, StoreError};

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
    #[error("the order already has a payment in progress or completed")]
    OrderAlreadyHasPayment,
    #[error("a request with this Idempotency-Key is still being processed")]
    KeyInFlight,
    #[error("this Idempotency-Key was used with a different request body")]
    KeyMismatch,
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

pub struct Payments {
    pool: PgPool,
    provider: Arc<dyn PaymentProvider>,
    retry: Retry,
    keys: KeyPolicy,
}

/// What step 1 decided.
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

/// Inserts a new `processing` payment.
async fn start_fresh(
    conn: &mut AsyncPgConnection,
    request: &NewPayment,
    payment_id: Uuid,
    now: OffsetDateTime,
) -> Result<Start, PaymentError> {
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
}

fn render(payment: &Payment) -> anyhow::Result<Vec<u8>> {
    Ok(serde_json::to_vec(&payment_data(payment))?)
}

impl Payments {
    pub fn new(
        pool: PgPool,
        provider: Arc<dyn PaymentProvider>,
        retry: Retry,
        keys: KeyPolicy,
    ) -> Self {
        Self {
            pool,
            provider,
            retry,
            keys,
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
        let mut conn = db::connection(&self.pool).await?;
        let owner = actor.user_id.clone();
        let start = {
            let request = &request;
            let key = &key;
            let owner = &owner;
            let keys = &self.keys;
            conn.transaction(async move |conn| -> Result<Start, PaymentError> {
                let now = now();
                let Some(key) = key else {
                    return start_fresh(conn, request, Uuid::now_v7(), now).await;
                };
                let payment_id = Uuid::now_v7();
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
                    KeyState::New => start_fresh(conn, request, payment_id, now).await,
                    KeyState::Abandoned { payment_id: None } => {
                        start_fresh(conn, request, Uuid::now_v7(), now).await
                    }
                    KeyState::Done { status, body } => Ok(Start::Replay(Reply {
                        status,
                        body,
                        replayed: true,
                    })),
                    KeyState::InFlight => Err(PaymentError::KeyInFlight),
                    KeyState::Mismatch => Err(PaymentError::KeyMismatch),
                    KeyState::Abandoned {
                        payment_id: Some(id),
                    } => {
                        let payment = store::find_payment(conn, id)
                            .await?
                            .ok_or_else(|| anyhow::anyhow!("key points at missing payment {id}"))?;
                        if payment.status == PaymentStatus::Processing {
                            Ok(Start::Charge(payment))
                        } else {
                            Ok(Start::Replay(Reply {
                                status: 201,
                                body: render(&payment)?,
                                replayed: true,
                            }))
                        }
                    }
                }
            })
            .await?
        };
        let payment = match start {
            Start::Replay(reply) => return Ok(reply),
            Start::Charge(payment) => payment,
        };

        let outcome = self.charge(&payment, &request.token).await;
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
        let cancelled = {
            let (settled, body, data) = (&settled, &body, &data);
            let key = key.as_ref().map(|key| (owner.as_str(), key.key.as_str()));
            let traceparent = actor.traceparent.as_deref();
            conn.transaction(async move |conn| -> Result<bool, PaymentError> {
                Ok(store::settle(
                    conn,
                    settled,
                    event_type.as_str(),
                    data,
                    traceparent,
                    key,
                    201,
                    body,
                )
                .await?)
            })
            .await?
        };
        tracing::info!(
            payment.id = %settled.id,
            order.id = %settled.order_id,
            payment.status = settled.status.as_str(),
            "payment settled"
        );
        metrics::counter!("payments_total", "outcome" => settled.status.as_str()).increment(1);
        if settled.status == PaymentStatus::Succeeded && cancelled {
            // The order was cancelled while it was being charged.
            self.refund_order(settled.order_id, None, actor.traceparent.as_deref())
                .await?;
        }
        Ok(Reply {
            status: 201,
            body,
            replayed: false,
        })
    }

    /// Charges through the provider, retrying transient failures; returns the
    /// charge reference or the failure reason.
    async fn charge(&self, payment: &Payment, token: &str) -> Result<String, String> {
        let mut delay = self.retry.backoff;
        for attempt in 1..=self.retry.attempts.max(1) {
            match self
                .provider
                .charge(payment.id, token, payment.amount)
                .await
            {
                Ok(reference) => return Ok(reference),
                Err(ProviderError::Declined(reason)) => return Err(reason),
                Err(ProviderError::Transient(reason)) if attempt == self.retry.attempts.max(1) => {
                    return Err(reason);
                }
                Err(ProviderError::Transient(reason)) => {
                    tracing::warn!(payment.id = %payment.id, attempt, reason, "provider failed; retrying");
                    tokio::time::sleep(delay).await;
                    delay *= 2;
                }
            }
        }
        Err("processing_error".into())
    }

    /// Refunds every succeeded payment of a cancelled order, atomically with
    /// recording `consumed` (the triggering event) in the inbox. Returns
    /// `false` if that event was already consumed.
    pub async fn refund_order(
        &self,
        order_id: Uuid,
        consumed: Option<(Uuid, &str)>,
        traceparent: Option<&str>,
    ) -> Result<bool, PaymentError> {
        let mut conn = db::connection(&self.pool).await?;
        let provider = &self.provider;
        conn.transaction(async move |conn| -> Result<bool, PaymentError> {
            if let Some((event_id, event_type)) = consumed
                && !store::record_consumed(conn, event_id, event_type).await?
            {
                return Ok(false);
            }
            store::mark_order_cancelled(conn, order_id).await?;
            for payment in store::lock_payments_of_order(conn, order_id).await? {
                if payment.status != PaymentStatus::Succeeded {
                    continue;
                }
                let reference = payment.provider_reference.clone().unwrap_or_default();
                // The provider deduplicates refunds per payment, so a
                // transaction that rolls back after this call and is retried
                // never refunds twice.
                let refund = provider
                    .refund(payment.id, &reference, payment.amount)
                    .await
                    .map_err(|error| anyhow::anyhow!("refund failed: {error}"))?;
                let refunded = payment
                    .refunded(refund, now())
                    .map_err(anyhow::Error::from)?;
                store::update_payment(conn, &refunded).await?;
                let data =
                    serde_json::to_value(payment_data(&refunded)).map_err(anyhow::Error::from)?;
                store::append_event(
                    conn,
                    PaymentEventType::Refunded.as_str(),
                    order_id,
                    &data,
                    traceparent,
                    refunded.updated_at,
                )
                .await?;
                tracing::info!(payment.id = %refunded.id, order.id = %order_id, "payment refunded");
                metrics::counter!("payments_total", "outcome" => "refunded").increment(1);
            }
            Ok(true)
        })
        .await
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
