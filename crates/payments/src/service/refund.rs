//! Refunds: of a cancelled order's payments, on request, and the refund job
//! that performs them.

use contracts::payment::{PaymentEventType, PaymentStatus};
use diesel_async::AsyncConnection;
use platform::clock::now;
use platform::db::{self, JsonText};
use platform::jobs::{self, Outcome};
use uuid::Uuid;

use super::jobs::{RefundJob, refund_job};
use super::{Actor, PaymentError, Payments, payment_data};
use crate::domain::Payment;
use crate::store::{self, INBOX, JOBS, StoreError};

/// What asking for a refund did.
#[derive(Debug)]
pub enum RefundRequested {
    /// Recorded: the refund job will do it.
    Accepted(Payment),
    /// It was refunded before.
    AlreadyRefunded(Payment),
}

impl Payments {
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
                    && !platform::inbox::record(conn, INBOX, event_id, event_type)
                        .await
                        .map_err(StoreError::from)?
                {
                    return Ok(None);
                }
                store::payments::mark_order_cancelled(conn, order_id).await?;
                let mut enqueued = 0;
                for payment in store::payments::lock_payments_of_order(conn, order_id).await? {
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
                let payment = store::payments::find_payment(conn, id)
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
            Ok::<_, PaymentError>(store::payments::find_payment(&mut conn, job.payment_id).await?)
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
            let data = JsonText::of(&payment_data(&refunded)).map_err(anyhow::Error::from)?;
            let conn = db::connection(&self.pool).await?;
            let moved = store::payments::transition(
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
                self.outbox.written();
                tracing::info!(payment.id = %job.payment_id, order.id = %order_id, reason = %job.reason, "payment refunded");
                metrics::counter!("payments_total", "outcome" => "refunded").increment(1);
                Outcome::Done
            }
            Ok(false) => Outcome::Done,
            Err(error) => Outcome::Retry(error.to_string()),
        }
    }
}
