//! What the services' operators' consoles tell each other: one service's
//! part of an order's story, which orders asks payments for when it
//! assembles the whole (`GET /api/v1/ops/orders/{id}` on both).

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use utoipa::ToSchema;

use crate::payment::PaymentData;

/// What a step of an order's story is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum StepKind {
    /// An event the service recorded (and published).
    Event,
    /// Work the service has not finished: pending or parked.
    Job,
    /// A message about the order the service's consumer gave up on.
    DeadLetter,
}

/// One step of an order's story.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Step {
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
    /// The service it happened in (`orders`, `payments`).
    pub service: String,
    pub kind: StepKind,
    /// The event type, the job's kind or the dead letter's type.
    #[schema(example = "order.paid")]
    pub name: String,
    /// What it did or why it stands, for a person (no personal data).
    #[schema(example = "status paid, payment paid, total 59.98 USD")]
    pub summary: String,
    /// Who caused it (a token's subject or a service), when known.
    #[serde(default)]
    pub actor: Option<String>,
    /// The W3C trace id of the request or message that caused it.
    #[serde(default)]
    pub trace_id: Option<String>,
}

/// One service's part of an order's story.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ServiceStory {
    pub service: String,
    /// In time order.
    pub steps: Vec<Step>,
    /// Payments only: the order's payments as they stand.
    #[serde(default)]
    pub payments: Vec<PaymentData>,
}

/// An order's whole story, as orders' console tells it
/// (`GET /api/v1/ops/orders/{id}`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct OrderStory {
    pub order_id: uuid::Uuid,
    pub order_number: String,
    /// As the order stands.
    pub status: String,
    pub payment_status: String,
    pub total: String,
    pub currency: String,
    /// Both services' steps, in time order.
    pub steps: Vec<Step>,
    /// The order's payments as payments has them (payments' `PaymentData`;
    /// left opaque here so that orders' API description keeps one
    /// `PaymentStatus`, the order's).
    #[schema(value_type = Vec<Object>)]
    pub payments: Vec<PaymentData>,
    /// The parts that could not be told, and why (payments unreachable, or
    /// the caller's token not valid there).
    pub missing: Vec<String>,
}

/// The trace id of a W3C `traceparent` (`00-<trace id>-<span id>-<flags>`).
pub fn trace_id(traceparent: Option<&str>) -> Option<String> {
    let trace = traceparent?.split('-').nth(1)?;
    (trace.len() == 32 && trace.bytes().all(|b| b.is_ascii_hexdigit())).then(|| trace.to_owned())
}

/// Orders the steps of a story by time (stable: steps of one service at
/// the same instant keep their order).
pub fn in_time_order(steps: &mut [Step]) {
    steps.sort_by_key(|step| step.at);
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_trace_id_is_read_from_a_traceparent_and_nothing_else() {
        assert_eq!(
            super::trace_id(Some(
                "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
            ))
            .as_deref(),
            Some("4bf92f3577b34da6a3ce929d0e0e4736")
        );
        assert_eq!(super::trace_id(Some("garbage")), None);
        assert_eq!(super::trace_id(None), None);
    }
}
