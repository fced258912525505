//! The work a change decides and the job worker does later (see
//! [`crate::messaging::dispatcher`]): each job is written in the transaction
//! of the change that decides it.

use platform::jobs::{Kind, NewJob};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::domain::OrderId;
use crate::domain::ReturnLine;
use crate::domain::events::{OrderCaptureRequested, OrderPaymentRejected, OrderReturnReceived};

// Each kind of job of schema `orders` is its payload type; its name is its
// `Kind::KIND`, its runner registered by type in `app.rs`.

/// Payload of a `restock` job: give a received return's units back to the
/// catalogue (the order's reservation re-reserved without them).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RestockJob {
    pub order_id: Uuid,
}

impl Kind for RestockJob {
    const KIND: &'static str = "restock";
}

/// Restocking after a received return (keyed by the return).
pub(super) fn restock(id: OrderId, return_id: Uuid) -> NewJob {
    RestockJob { order_id: id.0 }.job(return_id.to_string())
}

/// Payload of a `refund_return` job: have payments refund a received
/// return's share.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RefundReturnJob {
    pub order_id: Uuid,
    pub return_id: Uuid,
    pub payment_id: Uuid,
    /// Decimal string in the order's currency.
    pub amount: String,
    pub currency: String,
    /// The returned lines: `[{"item_id", "quantity"}]`.
    pub items: serde_json::Value,
    #[serde(default)]
    pub traceparent: Option<String>,
}

impl Kind for RefundReturnJob {
    const KIND: &'static str = "refund_return";
}

/// Refunding a received return (keyed by it: refunded once).
pub(super) fn refund_return(
    id: OrderId,
    received: &OrderReturnReceived,
    payment_id: Uuid,
    lines: &[ReturnLine],
    traceparent: Option<&str>,
) -> NewJob {
    RefundReturnJob {
        order_id: id.0,
        return_id: received.return_id,
        payment_id,
        amount: received.refund.to_string(),
        currency: received.refund.currency().code().to_owned(),
        items: serde_json::json!(lines),
        traceparent: traceparent.map(str::to_owned),
    }
    .job(received.return_id.to_string())
}

/// Payload of a `capture` job: have payments capture the authorization of
/// an order being shipped.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CaptureJob {
    pub payment_id: Uuid,
    pub order_id: Uuid,
    /// Decimal string in the order's currency.
    pub amount: String,
    #[serde(default)]
    pub traceparent: Option<String>,
}

impl Kind for CaptureJob {
    const KIND: &'static str = "capture";
}

/// Capturing an order's authorization at shipment (keyed by the payment:
/// captured once).
pub(super) fn capture(
    id: OrderId,
    requested: &OrderCaptureRequested,
    traceparent: Option<&str>,
) -> NewJob {
    CaptureJob {
        payment_id: requested.payment_id,
        order_id: id.0,
        amount: requested.amount.to_string(),
        traceparent: traceparent.map(str::to_owned),
    }
    .job(requested.payment_id.to_string())
}

/// Payload of a `pay` job: charge the order through payments.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PayJob {
    pub order_id: Uuid,
    pub attempt: i32,
    pub user_id: String,
    pub amount_minor: i64,
    pub currency: String,
    pub method: String,
    /// The provider token; deleted with the job once payments has it.
    pub token: String,
    #[serde(default)]
    pub traceparent: Option<String>,
}

impl Kind for PayJob {
    const KIND: &'static str = "pay";
}

/// Payload of a `release_stock` job.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ReleaseJob {
    pub reservation_id: Uuid,
}

impl Kind for ReleaseJob {
    const KIND: &'static str = "release_stock";
}

/// Payload of a `refund` job: have payments refund a charge the order
/// rejected.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RefundJob {
    pub payment_id: Uuid,
    pub order_id: Uuid,
    pub reason: String,
    #[serde(default)]
    pub traceparent: Option<String>,
}

impl Kind for RefundJob {
    const KIND: &'static str = "refund";
}

/// The first charge of a new order.
pub(super) fn pay(job: PayJob) -> NewJob {
    job.job(format!("{}:{}", job.order_id, job.attempt))
}

/// Releasing a reservation (keyed by it, so it is released once).
pub(super) fn release_stock(reservation_id: Uuid) -> NewJob {
    ReleaseJob { reservation_id }.job(reservation_id.to_string())
}

/// Refunding a charge the order rejected (keyed by the payment).
pub(super) fn refund(
    id: OrderId,
    rejected: &OrderPaymentRejected,
    traceparent: Option<&str>,
) -> NewJob {
    RefundJob {
        payment_id: rejected.payment_id,
        order_id: id.0,
        reason: rejected.reason.clone(),
        traceparent: traceparent.map(str::to_owned),
    }
    .job(rejected.payment_id.to_string())
}
