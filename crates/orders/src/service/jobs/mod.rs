//! Orders' durable work, run by the shared job layer ([`platform::jobs`]).
//! Each kind is one file: its payload (a [`platform::jobs::Kind`]), the
//! constructor the change that decides it calls (the job is written in that
//! change's transaction), and how it runs. [`register`] is the one list.

mod capture;
mod pay;
mod refund;
mod refund_return;
mod release;
mod restock;

use std::sync::Arc;

use platform::jobs::Worker;

pub use capture::CaptureJob;
pub(super) use capture::capture;
pub use pay::PayJob;
pub(super) use pay::pay;
pub use refund::RefundJob;
pub(super) use refund::refund;
pub use refund_return::RefundReturnJob;
pub(super) use refund_return::refund_return;
pub use release::ReleaseJob;
pub(super) use release::release_stock;
pub use restock::RestockJob;
pub(super) use restock::restock;

use super::Orders;
use crate::payments_client::PaymentsClient;

/// Runs orders' jobs: the use cases, and payments to call.
pub struct Jobs {
    orders: Arc<Orders>,
    payments: PaymentsClient,
}

impl Jobs {
    pub fn new(orders: Arc<Orders>, payments: PaymentsClient) -> Self {
        Self { orders, payments }
    }
}

/// Every kind of orders' job, registered with `worker`.
pub fn register(worker: Worker, jobs: Arc<Jobs>) -> Worker {
    worker
        .register::<PayJob, _>(jobs.clone())
        .register::<RefundJob, _>(jobs.clone())
        .register::<CaptureJob, _>(jobs.clone())
        .register::<RefundReturnJob, _>(jobs.clone())
        .register::<RestockJob, _>(jobs.clone())
        .register::<ReleaseJob, _>(jobs)
}
