//! `release_stock`: release a cancelled order's reservation at the
//! catalogue (keyed by it, so it is released once).

use crate::service::Orders;
use futures_util::future::BoxFuture;
use platform::jobs::{Kind, NewJob, Outcome, Runs};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::Jobs;

/// Payload of a `release_stock` job.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ReleaseJob {
    pub reservation_id: Uuid,
}

impl Kind for ReleaseJob {
    const KIND: &'static str = "release_stock";
}

/// Releasing a reservation (keyed by it, so it is released once).
pub(in crate::service) fn release_stock(reservation_id: Uuid) -> NewJob {
    ReleaseJob { reservation_id }.job(reservation_id.to_string())
}

impl Runs<ReleaseJob> for Jobs {
    fn run(&self, job: ReleaseJob) -> BoxFuture<'_, Outcome> {
        Box::pin(self.orders.release_stock(job))
    }
}

impl Orders {
    /// The `release_stock` job: releases a reservation at the catalogue
    /// (keyed by the order id, so releasing twice releases once).
    pub async fn release_stock(&self, job: ReleaseJob) -> Outcome {
        let Some(catalog) = &self.catalog else {
            return Outcome::Done;
        };
        match catalog.release(job.reservation_id).await {
            Ok(()) => Outcome::Done,
            Err(error) => Outcome::Retry(error.to_string()),
        }
    }
}
