//! Payments a crash left `processing`: found by a periodic scan, settled by
//! a job with what the provider says happened.

use contracts::payment::PaymentStatus;
use platform::clock::now;
use platform::db;
use platform::jobs::Outcome;

use super::jobs::ReconcileJob;
use super::{PaymentError, Payments};
use crate::provider::Resolution;
use crate::store;

impl Payments {
    /// The reconciliation job: settles a payment left `processing` (by a
    /// crash between the provider's answer and the settle) with what the
    /// provider says happened. A charge the provider never made is voided
    /// there first, so it cannot succeed later.
    pub async fn run_reconcile(&self, job: ReconcileJob) -> Outcome {
        let found = async {
            let mut conn = db::connection(&self.pool).await?;
            Ok::<_, PaymentError>(store::payments::find_payment(&mut conn, job.payment_id).await?)
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
    /// `stale_after`; returns how many are stuck. Their number is the gauge
    /// `payments_stuck_processing` (not zero for long: reconciliation is not
    /// getting through, e.g. the provider cannot be asked).
    pub async fn find_stuck(&self, stale_after: time::Duration) -> Result<usize, PaymentError> {
        let mut conn = db::connection(&self.pool).await?;
        let found = store::payments::enqueue_stuck(&mut conn, now() - stale_after).await?;
        #[allow(clippy::cast_precision_loss)] // a count of payments
        metrics::gauge!("payments_stuck_processing").set(found.stuck as f64);
        if found.enqueued > 0 {
            self.jobs.notify_one();
        }
        Ok(usize::try_from(found.stuck).unwrap_or_default())
    }
}
