//! Charging an order (`POST /api/v1/payments`).

use contracts::payment::{CaptureMethod, PaymentEventType, PaymentStatus};
use diesel_async::AsyncConnection;
use platform::clock::now;
use platform::db::{self, JsonText};
use platform::jobs;
use uuid::Uuid;

use super::jobs::void_job;
use super::{
    Actor, IdempotencyKey, NewPayment, PaymentError, Payments, Reply, payment_data, refusal_kind,
    render,
};
use crate::domain::{ChargeRequest, OrderFacts, Payment, check_payable};
use crate::provider::ProviderError;
use crate::store::{self, JOBS, idempotency::KEYS};
use contracts::order::OrderStatus;
use platform::idempotency::Claim;

/// What step 2 decided.
enum Start {
    Charge(Box<Payment>),
    Replay(Reply),
}

impl Payments {
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
        // Orders, the authority on its orders, states the facts itself: a
        // charge its dispatcher asks for carries the owner and total decided
        // in the transaction that placed the order, so asking orders back
        // would only echo them (an HTTP round trip and a read per paid
        // order). Whether it was cancelled since is payments' own knowledge,
        // checked below. Anyone else's request is checked against orders: a
        // read before anything is reserved, its answer used only if the key
        // turns out to be new (a replay answers whatever it says).
        let stated = actor.admin && actor.user_id == contracts::order::SERVICE_SUBJECT;
        let order = if stated {
            Ok(Some(OrderFacts {
                id: request.order_id,
                user_id: request.user_id.clone(),
                status: OrderStatus::Pending,
                total: request.amount,
            }))
        } else {
            self.orders.order(request.order_id).await
        };
        let mut conn = db::connection(&self.pool).await?;
        let owner = actor.user_id.clone();
        let start = {
            let (request, key, owner, keys, order) = (&request, &key, &owner, &self.keys, &order);
            conn.transaction(async move |conn| -> Result<Start, PaymentError> {
                let now = now();
                let payment_id = Uuid::now_v7();
                if let Some(key) = key {
                    match KEYS
                        .claim(conn, owner, key, Some(payment_id), now, *keys)
                        .await?
                    {
                        Claim::New => {}
                        Claim::Abandoned { resource: None } => {
                            KEYS.set_resource(conn, owner, &key.key, payment_id).await?;
                        }
                        Claim::Done { body } => {
                            return Ok(Start::Replay(Reply {
                                body,
                                replayed: true,
                            }));
                        }
                        Claim::InFlight => return Err(PaymentError::KeyInFlight),
                        Claim::Mismatch => return Err(PaymentError::KeyMismatch),
                        Claim::Abandoned { resource: Some(id) } => {
                            let payment =
                                store::payments::find_payment(conn, id).await?.ok_or_else(
                                    || anyhow::anyhow!("key points at missing payment {id}"),
                                )?;
                            return Ok(if payment.status == PaymentStatus::Processing {
                                Start::Charge(Box::new(payment))
                            } else {
                                Start::Replay(Reply {
                                    body: render(&payment)?,
                                    replayed: true,
                                })
                            });
                        }
                    }
                }
                let mut order = order
                    .as_ref()
                    .map_err(|error| PaymentError::OrdersUnavailable(format!("{error:#}")))?
                    .clone();
                if let Some(order) = order.as_mut().filter(|_| stated)
                    && store::payments::order_cancelled(conn, order.id).await?
                {
                    order.status = OrderStatus::Cancelled;
                }
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
                    request.capture_method,
                    now,
                );
                store::payments::insert_payment(conn, &payment).await?;
                Ok(Start::Charge(Box::new(payment)))
            })
            .await
        };
        let payment = match start {
            Ok(Start::Replay(reply)) => return Ok(reply),
            Ok(Start::Charge(payment)) => *payment,
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
            body,
            replayed: false,
        })
    }

    /// Settles a `processing` payment with the provider's outcome (reference
    /// or failure reason); returns the payment as it now stands and its
    /// rendering. If another path settled it first, that outcome stands.
    pub(super) async fn record_outcome(
        &self,
        payment: Payment,
        outcome: Result<String, String>,
        key: Option<(&str, &str)>,
        traceparent: Option<&str>,
    ) -> Result<(Payment, Vec<u8>), PaymentError> {
        let settled = match (outcome, payment.capture_method) {
            (Ok(reference), CaptureMethod::Automatic) => payment.succeeded(reference, now()),
            (Ok(reference), CaptureMethod::Manual) => payment.authorized(reference, now()),
            (Err(reason), _) => payment.failed(reason, now()),
        }
        .map_err(anyhow::Error::from)?;
        let body = render(&settled)?;
        let event_type = match settled.status {
            PaymentStatus::Succeeded => PaymentEventType::Successful,
            PaymentStatus::Authorized => PaymentEventType::Authorized,
            _ => PaymentEventType::Failed,
        };
        let data = JsonText::of(&payment_data(&settled)).map_err(anyhow::Error::from)?;
        let mut conn = db::connection(&self.pool).await?;
        let (current, body, won, refund) = {
            let (settled, body, data) = (&settled, &body, &data);
            conn.transaction(
                async move |conn| -> Result<(Payment, Vec<u8>, bool, bool), PaymentError> {
                    let outcome = store::payments::settle(
                        conn,
                        settled,
                        event_type.as_str(),
                        data,
                        traceparent,
                        key,
                        body,
                    )
                    .await?;
                    if !outcome.won {
                        let current = store::payments::find_payment(conn, settled.id)
                            .await?
                            .ok_or_else(|| anyhow::anyhow!("payment {} vanished", settled.id))?;
                        let body = render(&current)?;
                        store::idempotency::store_response(conn, key, &body).await?;
                        return Ok((current, body, false, false));
                    }
                    let refund = outcome.order_cancelled
                        && matches!(
                            settled.status,
                            PaymentStatus::Succeeded | PaymentStatus::Authorized
                        );
                    if refund && settled.status == PaymentStatus::Succeeded {
                        // The order was cancelled while it was being charged.
                        super::refund::refund_settled(conn, settled, traceparent).await?;
                    } else if refund {
                        // ... or authorized: the hold is released.
                        jobs::enqueue(conn, JOBS, &void_job(settled.id, traceparent)).await?;
                    }
                    Ok((settled.clone(), body.clone(), true, refund))
                },
            )
            .await?
        };
        if refund {
            self.jobs.notify_one();
        }
        if won {
            // This outcome was recorded, with its event.
            self.outbox.written();
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

    /// Charges (or, for manual capture, authorizes) through the provider,
    /// retrying transient failures; returns the reference or the failure
    /// reason.
    async fn charge(&self, payment: &Payment, token: &str) -> Result<String, String> {
        let charged = platform::resilience::retry(
            self.retry,
            || match payment.capture_method {
                CaptureMethod::Automatic => self.provider.charge(payment.id, token, payment.amount),
                CaptureMethod::Manual => self.provider.authorize(payment.id, token, payment.amount),
            },
            |error| matches!(error, ProviderError::Transient(_)),
        )
        .await;
        charged.map_err(|error| match error {
            ProviderError::Declined(reason) | ProviderError::Transient(reason) => reason,
        })
    }
}
