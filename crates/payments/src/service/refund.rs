//! Refunds: resources of their own (`POST/GET /api/v1/payments/{id}/refunds`),
//! of a cancelled order's payments, on request, and the refund job that
//! performs each one once.
//!
//! Accepting a refund and reserving its amount on the payment happen in one
//! transaction, with the payment locked and a compare-and-set under the
//! database's CHECK: of two concurrent refunds that together exceed what was
//! captured, exactly one is accepted, the other is `refund_exceeds_captured`.

use contracts::money::{Amount, Currency, Money};
use contracts::payment::{PaymentEventType, PaymentStatus, RefundLine, RefundStatus};
use diesel_async::{AsyncConnection, AsyncPgConnection};
use platform::clock::now;
use platform::db::{self, JsonText};
use platform::jobs::{self, Outcome};
use uuid::Uuid;

use super::jobs::{RefundJob, refund_job};
use super::{Actor, IdempotencyKey, PaymentError, Payments, Reply, SYSTEM, payment_data};
use crate::domain::{Payment, Refund, RefundRefusal};
use crate::provider::ProviderError;
use crate::store::{self, INBOX, JOBS, StoreError, idempotency::KEYS};
use platform::idempotency::Claim;

/// A validated refund request.
#[derive(Debug, Clone)]
pub struct RefundAsk {
    /// `None`: all that remains. Read in the payment's currency.
    pub amount: Option<Amount>,
    /// When the client names it, it must be the payment's.
    pub currency: Option<Currency>,
    pub reason: String,
    pub items: Vec<RefundLine>,
}

/// What asking for the rest of a payment back did (the older
/// `POST /api/v1/payments/{id}/refund`).
#[derive(Debug)]
pub enum RefundRequested {
    /// Recorded (or still being done): the refund job will do it.
    Accepted(Payment),
    /// It was refunded in full (or released) before.
    AlreadyRefunded(Payment),
}

pub fn refund_data(refund: &Refund) -> contracts::payment::RefundData {
    contracts::payment::RefundData {
        id: refund.id,
        payment_id: refund.payment_id,
        amount: refund.amount.to_string(),
        currency: refund.amount.currency().code().to_owned(),
        status: refund.status,
        reason: refund.reason.clone(),
        items: refund.items.clone(),
        provider_reference: refund.provider_reference.clone(),
        failure_reason: refund.failure_reason.clone(),
        created_at: refund.created_at,
        updated_at: refund.updated_at,
    }
}

/// Accepts a refund of `amount` of a locked `payment`: reserves the amount,
/// records the refund and enqueues the job that makes it.
async fn open_refund(
    conn: &mut AsyncPgConnection,
    payment: &Payment,
    amount: Money,
    ask: (&str, &[RefundLine]),
    requested_by: &str,
    traceparent: Option<&str>,
) -> Result<Refund, PaymentError> {
    let now = now();
    let (reason, items) = ask;
    let refund = Refund {
        id: Uuid::now_v7(),
        payment_id: payment.id,
        amount,
        status: RefundStatus::Pending,
        reason: reason.to_owned(),
        items: items.to_vec(),
        requested_by: requested_by.to_owned(),
        provider_reference: None,
        failure_reason: None,
        created_at: now,
        updated_at: now,
    };
    store::refunds::accept(conn, &refund).await?;
    jobs::enqueue(conn, JOBS, &refund_job(refund.id, traceparent)).await?;
    Ok(refund)
}

/// Refunds what remains of every captured payment of a cancelled order (in
/// the caller's transaction); returns how many refunds were opened.
pub(super) async fn refund_rest_of_order(
    conn: &mut AsyncPgConnection,
    order_id: Uuid,
    traceparent: Option<&str>,
) -> Result<usize, PaymentError> {
    let mut opened = 0;
    for payment in store::payments::lock_payments_of_order(conn, order_id).await? {
        if payment.status == PaymentStatus::Authorized {
            // Held, never taken: released, not refunded.
            jobs::enqueue(conn, JOBS, &super::jobs::void_job(payment.id, traceparent)).await?;
            opened += 1;
            continue;
        }
        let rest = payment.refundable();
        if matches!(
            payment.status,
            PaymentStatus::Succeeded | PaymentStatus::PartiallyRefunded
        ) && rest.minor() > 0
        {
            open_refund(
                conn,
                &payment,
                rest,
                ("order_cancelled", &[]),
                SYSTEM,
                traceparent,
            )
            .await?;
            opened += 1;
        }
    }
    Ok(opened)
}

/// Opens the refund of a payment just settled for an order cancelled
/// meanwhile (in the settle transaction).
pub(super) async fn refund_settled(
    conn: &mut AsyncPgConnection,
    payment: &Payment,
    traceparent: Option<&str>,
) -> Result<(), PaymentError> {
    open_refund(
        conn,
        payment,
        payment.refundable(),
        ("order_cancelled", &[]),
        SYSTEM,
        traceparent,
    )
    .await
    .map(drop)
}

impl Payments {
    /// An order was cancelled (`order.cancelled`): records it, so a charge
    /// completing later is refunded at once, and refunds what remains of
    /// every captured payment of the order, atomically with recording
    /// `consumed` (the triggering event) in the inbox. Returns `false` if
    /// that event was already consumed.
    pub async fn refund_order(
        &self,
        order_id: Uuid,
        consumed: Option<(Uuid, &str)>,
        traceparent: Option<&str>,
    ) -> Result<bool, PaymentError> {
        let mut conn = db::connection(&self.pool).await?;
        let opened = conn
            .transaction(async move |conn| -> Result<Option<usize>, PaymentError> {
                if let Some((event_id, event_type)) = consumed
                    && !platform::inbox::record(conn, INBOX, event_id, event_type)
                        .await
                        .map_err(StoreError::from)?
                {
                    return Ok(None);
                }
                store::payments::mark_order_cancelled(conn, order_id).await?;
                Ok(Some(
                    refund_rest_of_order(conn, order_id, traceparent).await?,
                ))
            })
            .await?;
        if opened.is_some_and(|n| n > 0) {
            self.jobs.notify_one();
        }
        Ok(opened.is_some())
    }

    /// Takes a refund of a payment (`POST /api/v1/payments/{id}/refunds`,
    /// admins and the orders service): accepted at once with its amount
    /// reserved, done by durable work. Honours `Idempotency-Key` (the same
    /// request replays the first answer; the key is claimed in the same
    /// transaction, so it is never left in flight).
    pub async fn create_refund(
        &self,
        actor: &Actor,
        payment_id: Uuid,
        ask: RefundAsk,
        key: Option<IdempotencyKey>,
    ) -> Result<Reply, PaymentError> {
        if !actor.admin {
            return Err(PaymentError::Forbidden(
                "only an admin or the orders service may refund a payment".into(),
            ));
        }
        let mut conn = db::connection(&self.pool).await?;
        let traceparent = actor.traceparent.as_deref();
        let owner = actor.user_id.as_str();
        let (key, keys, ask) = (&key, &self.keys, &ask);
        let reply = conn
            .transaction(async move |conn| -> Result<Reply, PaymentError> {
                if let Some(key) = key {
                    match KEYS
                        .claim(conn, owner, key, Some(payment_id), now(), *keys)
                        .await?
                    {
                        Claim::New | Claim::Abandoned { .. } => {}
                        Claim::Done { body } => {
                            return Ok(Reply {
                                body,
                                replayed: true,
                            });
                        }
                        Claim::InFlight => return Err(PaymentError::KeyInFlight),
                        Claim::Mismatch => return Err(PaymentError::KeyMismatch),
                    }
                }
                let payment = store::payments::lock_payment(conn, payment_id)
                    .await?
                    .ok_or(PaymentError::NotFound)?;
                let currency = payment.amount.currency();
                if ask.currency.is_some_and(|asked| asked != currency) {
                    return Err(RefundRefusal::CurrencyMismatch { expected: currency }.into());
                }
                let asked = ask
                    .amount
                    .as_ref()
                    .map(|amount| amount.to_money(currency))
                    .transpose()
                    .map_err(|error| RefundRefusal::InvalidAmount(error.to_string()))?;
                let amount = payment.refund_amount(asked)?;
                let refund = open_refund(
                    conn,
                    &payment,
                    amount,
                    (&ask.reason, &ask.items),
                    owner,
                    traceparent,
                )
                .await?;
                let body =
                    serde_json::to_vec(&refund_data(&refund)).map_err(anyhow::Error::from)?;
                let key = key.as_ref().map(|key| (owner, key.key.as_str()));
                store::idempotency::store_response(conn, key, &body).await?;
                Ok(Reply {
                    body,
                    replayed: false,
                })
            })
            .await;
        let reply = match reply {
            Err(PaymentError::RefundRefused(refusal)) => {
                metrics::counter!("payments_refunds_refused_total", "reason" => refund_refusal_kind(&refusal))
                    .increment(1);
                return Err(PaymentError::RefundRefused(refusal));
            }
            other => other?,
        };
        if !reply.replayed {
            self.jobs.notify_one();
        }
        Ok(reply)
    }

    /// Asks for all that remains of a payment back (the older
    /// `POST /api/v1/payments/{id}/refund`: orders when it rejects a charge,
    /// or an operator). Asking again changes nothing.
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
        let subject = actor.user_id.as_str();
        let (requested, opened) = conn
            .transaction(
                async move |conn| -> Result<(Option<RefundRequested>, bool), PaymentError> {
                    let payment = store::payments::lock_payment(conn, id)
                        .await?
                        .ok_or(PaymentError::NotFound)?;
                    match payment.status {
                        PaymentStatus::Refunded => {
                            return Ok((Some(RefundRequested::AlreadyRefunded(payment)), false));
                        }
                        // Held, not taken: giving it back is releasing it.
                        PaymentStatus::Authorized | PaymentStatus::Voided => {
                            return Ok((None, false));
                        }
                        PaymentStatus::Failed
                        | PaymentStatus::Pending
                        | PaymentStatus::Processing => {
                            return Err(RefundRefusal::NotRefundable(payment.status).into());
                        }
                        PaymentStatus::Succeeded | PaymentStatus::PartiallyRefunded => {}
                    }
                    let rest = payment.refundable();
                    if rest.minor() == 0 {
                        // Everything left is being refunded already.
                        return Ok((Some(RefundRequested::Accepted(payment)), false));
                    }
                    open_refund(conn, &payment, rest, (reason, &[]), subject, traceparent).await?;
                    Ok((Some(RefundRequested::Accepted(payment)), true))
                },
            )
            .await?;
        if opened {
            self.jobs.notify_one();
        }
        let Some(requested) = requested else {
            return Ok(match self.release(id, traceparent, None).await? {
                super::CaptureAnswer::Done(voided) => RefundRequested::Accepted(voided),
                super::CaptureAnswer::AlreadyDone(voided) => {
                    RefundRequested::AlreadyRefunded(voided)
                }
            });
        };
        Ok(requested)
    }

    /// A payment's refunds, oldest first (its owner or an admin).
    pub async fn refunds_of(
        &self,
        actor: &Actor,
        payment_id: Uuid,
    ) -> Result<Vec<Refund>, PaymentError> {
        let mut conn = db::connection(&self.pool).await?;
        store::payments::find_payment(&mut conn, payment_id)
            .await?
            .filter(|payment| actor.admin || payment.user_id == actor.user_id)
            .ok_or(PaymentError::NotFound)?;
        Ok(store::refunds::of_payment(&mut conn, payment_id).await?)
    }

    /// The refund job: has the provider refund an accepted refund (once: the
    /// provider deduplicates per refund id), then records it and its
    /// `payment.refunded` by compare-and-set on the refund, once.
    pub async fn run_refund(&self, job: RefundJob) -> Outcome {
        let Some(refund_id) = job.refund_id else {
            return self.run_older_refund(job).await;
        };
        let found = async {
            let mut conn = db::connection(&self.pool).await?;
            let refund = store::refunds::find(&mut conn, refund_id).await?;
            let payment = match &refund {
                Some(refund) => store::payments::find_payment(&mut conn, refund.payment_id).await?,
                None => None,
            };
            Ok::<_, PaymentError>(refund.zip(payment))
        }
        .await;
        let (refund, payment) = match found {
            Ok(Some(found)) => found,
            Ok(None) => return Outcome::Park(format!("no refund {refund_id}")),
            Err(error) => return Outcome::Retry(error.to_string()),
        };
        if refund.status != RefundStatus::Pending {
            return Outcome::Done;
        }
        let reference = payment.provider_reference.clone().unwrap_or_default();
        let settled = match self
            .provider
            .refund(refund.id, payment.id, &reference, refund.amount)
            .await
        {
            Ok(reference) => Refund {
                status: RefundStatus::Succeeded,
                provider_reference: Some(reference),
                updated_at: now(),
                ..refund
            },
            Err(ProviderError::Transient(error)) => {
                return Outcome::Retry(format!("refund failed: {error}"));
            }
            Err(ProviderError::Declined(reason)) => Refund {
                status: RefundStatus::Failed,
                failure_reason: Some(reason),
                updated_at: now(),
                ..refund
            },
        };
        match self
            .record_refund(&settled, job.traceparent.as_deref())
            .await
        {
            Ok(true) => {
                self.outbox.written();
                tracing::info!(
                    refund.id = %settled.id,
                    payment.id = %settled.payment_id,
                    refund.status = settled.status.as_str(),
                    reason = %settled.reason,
                    "refund settled"
                );
                metrics::counter!("payments_refunds_total", "outcome" => settled.status.as_str())
                    .increment(1);
                Outcome::Done
            }
            Ok(false) => Outcome::Done,
            Err(error) => Outcome::Retry(error.to_string()),
        }
    }

    /// Records a refund's outcome: the refund settled, the payment's amounts
    /// and status moved, and (when money went back) `payment.refunded` with
    /// the refund, in one transaction. `false` if it was recorded before.
    async fn record_refund(
        &self,
        settled: &Refund,
        traceparent: Option<&str>,
    ) -> Result<bool, PaymentError> {
        let mut conn = db::connection(&self.pool).await?;
        conn.transaction(async move |conn| -> Result<bool, PaymentError> {
            let payment = store::payments::lock_payment(conn, settled.payment_id)
                .await?
                .ok_or_else(|| anyhow::anyhow!("payment {} vanished", settled.payment_id))?;
            if !store::refunds::settle(conn, settled).await? {
                return Ok(false);
            }
            let next = match settled.status {
                RefundStatus::Succeeded => payment
                    .refund_done(
                        settled.amount,
                        settled.provider_reference.clone().unwrap_or_default(),
                        settled.updated_at,
                    )
                    .map_err(anyhow::Error::from)?,
                // Refused for good: its amount may be refunded again.
                _ => Payment {
                    refund_pending: Money::from_minor(
                        (payment.refund_pending.minor() - settled.amount.minor()).max(0),
                        settled.amount.currency(),
                    )
                    .map_err(anyhow::Error::from)?,
                    updated_at: settled.updated_at,
                    ..payment
                },
            };
            store::refunds::update_payment(conn, &next).await?;
            if settled.status == RefundStatus::Succeeded {
                let mut data = payment_data(&next);
                data.refund = Some(refund_data(settled));
                let data = JsonText::of(&data).map_err(anyhow::Error::from)?;
                store::refunds::append_event(
                    conn,
                    &next,
                    PaymentEventType::Refunded.as_str(),
                    &data,
                    traceparent,
                )
                .await?;
            }
            Ok(true)
        })
        .await
    }

    /// A refund job written before refunds were resources: refunds what
    /// remains of its payment as a refund of its own.
    async fn run_older_refund(&self, job: RefundJob) -> Outcome {
        let Some(payment_id) = job.payment_id else {
            return Outcome::Park("a refund job names neither a refund nor a payment".into());
        };
        let actor = Actor::service(SYSTEM);
        let reason = job.reason.unwrap_or_else(|| "requested".to_owned());
        match self.request_refund(&actor, payment_id, &reason).await {
            Ok(_) | Err(PaymentError::RefundRefused(_)) => Outcome::Done,
            Err(PaymentError::NotFound) => Outcome::Park(format!("no payment {payment_id}")),
            Err(error) => Outcome::Retry(error.to_string()),
        }
    }
}

/// The problem `type` of a refund refusal, also its metric label.
pub fn refund_refusal_kind(refusal: &RefundRefusal) -> &'static str {
    match refusal {
        RefundRefusal::NotRefundable(_) => "not_refundable",
        RefundRefusal::ExceedsCaptured { .. } => "refund_exceeds_captured",
        RefundRefusal::CurrencyMismatch { .. }
        | RefundRefusal::Zero
        | RefundRefusal::InvalidAmount(_) => "validation_error",
    }
}
