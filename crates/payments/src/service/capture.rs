//! Manual capture: an authorized payment is captured (`POST
//! /api/v1/payments/{id}/capture`, by orders when the order ships) or voided
//! (`…/void`, or by the void job when its order is cancelled first).
//!
//! The provider is asked first, keyed by the payment id (it captures or
//! voids once however often it is asked); then the payment moves by
//! compare-and-set from `authorized`, with its event in the same statement.
//! A crash between the two leaves the payment `authorized`; asking again
//! (orders' capture job retries until answered) finds the provider's first
//! answer and records it.

use contracts::money::Amount;
use contracts::payment::{PaymentEventType, PaymentStatus};
use platform::clock::now;
use platform::db::{self, JsonText};
use platform::jobs::Outcome;
use uuid::Uuid;

use super::jobs::VoidJob;
use super::{Actor, PaymentError, Payments, SYSTEM, payment_data};
use crate::domain::{CaptureRefusal, Payment};
use crate::provider::ProviderError;
use crate::store;

/// What a capture or void did.
#[derive(Debug)]
pub enum CaptureAnswer {
    /// Done now.
    Done(Payment),
    /// Done before (a retry): the payment as it stands.
    AlreadyDone(Payment),
}

/// The problem `type` of a capture refusal.
pub fn capture_refusal_kind(refusal: &CaptureRefusal) -> &'static str {
    match refusal {
        CaptureRefusal::NotCapturable(_) => "not_capturable",
        CaptureRefusal::ExceedsAuthorized { .. } => "capture_exceeds_authorized",
        CaptureRefusal::Zero | CaptureRefusal::InvalidAmount(_) => "validation_error",
    }
}

fn admin_only(actor: &Actor) -> Result<(), PaymentError> {
    if actor.admin {
        Ok(())
    } else {
        Err(PaymentError::Forbidden(
            "only an admin or the orders service may capture or void a payment".into(),
        ))
    }
}

impl Payments {
    async fn load(&self, id: Uuid) -> Result<Payment, PaymentError> {
        let mut conn = db::connection(&self.pool).await?;
        store::payments::find_payment(&mut conn, id)
            .await?
            .ok_or(PaymentError::NotFound)
    }

    /// Asks the provider, retrying its transient failures; a refusal or
    /// failures to the end change nothing.
    async fn ask_provider<T, F>(&self, call: impl FnMut() -> F) -> Result<T, PaymentError>
    where
        F: std::future::Future<Output = Result<T, ProviderError>>,
    {
        platform::resilience::retry(self.retry, call, |error| {
            matches!(error, ProviderError::Transient(_))
        })
        .await
        .map_err(|error| match error {
            ProviderError::Declined(reason) => PaymentError::ProviderDeclined(reason),
            ProviderError::Transient(reason) => PaymentError::ProviderUnavailable(reason),
        })
    }

    /// Moves an authorized payment to `next` with its event; `false` if
    /// another path moved it first.
    async fn settle_authorization(
        &self,
        next: &Payment,
        event: PaymentEventType,
        traceparent: Option<&str>,
    ) -> Result<bool, PaymentError> {
        let data = JsonText::of(&payment_data(next)).map_err(anyhow::Error::from)?;
        let conn = db::connection(&self.pool).await?;
        let moved = store::payments::transition(
            &conn,
            next,
            PaymentStatus::Authorized,
            event.as_str(),
            &data,
            traceparent,
        )
        .await?;
        if moved {
            self.outbox.written();
        }
        Ok(moved)
    }

    /// Captures `amount` (all of it when `None`) of an authorized payment.
    /// Capturing a captured payment again answers it as it stands.
    pub async fn capture(
        &self,
        actor: &Actor,
        id: Uuid,
        amount: Option<Amount>,
    ) -> Result<CaptureAnswer, PaymentError> {
        admin_only(actor)?;
        let payment = self.load(id).await?;
        if payment.captured.minor() > 0 {
            return Ok(CaptureAnswer::AlreadyDone(payment));
        }
        let asked = amount
            .as_ref()
            .map(|amount| amount.to_money(payment.amount.currency()))
            .transpose()
            .map_err(|error| CaptureRefusal::InvalidAmount(error.to_string()))?;
        let amount = payment.capture_amount(asked)?;
        self.ask_provider(|| self.provider.capture(id, amount))
            .await?;
        let captured = payment
            .captured(amount, now())
            .map_err(anyhow::Error::from)?;
        if self
            .settle_authorization(
                &captured,
                PaymentEventType::Captured,
                actor.traceparent.as_deref(),
            )
            .await?
        {
            tracing::info!(payment.id = %id, order.id = %captured.order_id, amount = %amount, "payment captured");
            metrics::counter!("payments_total", "outcome" => "captured").increment(1);
            return Ok(CaptureAnswer::Done(captured));
        }
        let current = self.load(id).await?;
        match current.captured.minor() {
            0 => Err(CaptureRefusal::NotCapturable(current.status).into()),
            _ => Ok(CaptureAnswer::AlreadyDone(current)),
        }
    }

    /// Releases an authorized payment (`POST …/void`). Voiding a voided
    /// payment again answers it as it stands.
    pub async fn void(&self, actor: &Actor, id: Uuid) -> Result<CaptureAnswer, PaymentError> {
        admin_only(actor)?;
        self.release(id, actor.traceparent.as_deref(), None).await
    }

    /// Enqueues the void of authorizations older than `expire_after`;
    /// returns how many.
    pub async fn expire_authorizations(
        &self,
        expire_after: time::Duration,
    ) -> Result<usize, PaymentError> {
        let mut conn = db::connection(&self.pool).await?;
        let found =
            store::payments::enqueue_expired_authorizations(&mut conn, now() - expire_after)
                .await?;
        if found > 0 {
            tracing::info!(count = found, "voiding expired authorizations");
            self.jobs.notify_one();
        }
        Ok(found)
    }

    pub(super) async fn release(
        &self,
        id: Uuid,
        traceparent: Option<&str>,
        reason: Option<&str>,
    ) -> Result<CaptureAnswer, PaymentError> {
        let payment = self.load(id).await?;
        match payment.status {
            PaymentStatus::Voided => return Ok(CaptureAnswer::AlreadyDone(payment)),
            PaymentStatus::Authorized => {}
            other => return Err(PaymentError::NotVoidable(other)),
        }
        self.ask_provider(|| self.provider.void(id)).await?;
        let mut voided = payment.voided(now()).map_err(anyhow::Error::from)?;
        voided.failure_reason = reason.map(str::to_owned);
        if self
            .settle_authorization(&voided, PaymentEventType::Voided, traceparent)
            .await?
        {
            tracing::info!(payment.id = %id, order.id = %voided.order_id, "authorization voided");
            metrics::counter!("payments_total", "outcome" => "voided").increment(1);
            return Ok(CaptureAnswer::Done(voided));
        }
        let current = self.load(id).await?;
        match current.status {
            PaymentStatus::Voided => Ok(CaptureAnswer::AlreadyDone(current)),
            other => Err(PaymentError::NotVoidable(other)),
        }
    }

    /// The void job (an order cancelled before its payment was captured, or
    /// an authorization expired): releases the hold. If a capture won the
    /// race with a cancellation, what it took is refunded; with an expiry,
    /// the capture stands.
    pub async fn run_void(&self, job: VoidJob) -> Outcome {
        match self
            .release(
                job.payment_id,
                job.traceparent.as_deref(),
                job.reason.as_deref(),
            )
            .await
        {
            Ok(_) => Outcome::Done,
            // An expiry that lost the race to a capture: the capture stands.
            Err(PaymentError::NotVoidable(_) | PaymentError::ProviderDeclined(_))
                if job.reason.is_some() =>
            {
                Outcome::Done
            }
            // The order was cancelled, and a capture won the race: what it
            // took is refunded.
            Err(PaymentError::NotVoidable(PaymentStatus::Succeeded))
            | Err(PaymentError::ProviderDeclined(_)) => {
                let actor = Actor::service(SYSTEM);
                match self
                    .request_refund(&actor, job.payment_id, "order_cancelled")
                    .await
                {
                    Ok(_) => Outcome::Done,
                    Err(PaymentError::RefundRefused(refusal)) => {
                        Outcome::Park(format!("neither voidable nor refundable: {refusal}"))
                    }
                    Err(error) => Outcome::Retry(error.to_string()),
                }
            }
            Err(PaymentError::NotVoidable(_)) => Outcome::Done,
            Err(PaymentError::NotFound) => Outcome::Park(format!("no payment {}", job.payment_id)),
            Err(error) => Outcome::Retry(error.to_string()),
        }
    }
}
