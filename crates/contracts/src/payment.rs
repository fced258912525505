//! `payment.*` events and the payment representation (REST and event data).

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use utoipa::ToSchema;
use uuid::Uuid;

/// The `source` attribute of every payment event.
pub const SOURCE: &str = "/payments";
/// The topic exchange payment events are published to.
pub const EXCHANGE: &str = "payments.events";

/// The payment event types; each is also the routing key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
pub enum PaymentEventType {
    #[serde(rename = "payment.successful")]
    Successful,
    #[serde(rename = "payment.failed")]
    Failed,
    #[serde(rename = "payment.refunded")]
    Refunded,
}

impl PaymentEventType {
    pub const ALL: [PaymentEventType; 3] = [
        PaymentEventType::Successful,
        PaymentEventType::Failed,
        PaymentEventType::Refunded,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            PaymentEventType::Successful => "payment.successful",
            PaymentEventType::Failed => "payment.failed",
            PaymentEventType::Refunded => "payment.refunded",
        }
    }

    pub fn parse(value: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.as_str() == value)
    }
}

/// Where a payment stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum PaymentStatus {
    Pending,
    Processing,
    Succeeded,
    Failed,
    Refunded,
}

impl PaymentStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            PaymentStatus::Pending => "pending",
            PaymentStatus::Processing => "processing",
            PaymentStatus::Succeeded => "succeeded",
            PaymentStatus::Failed => "failed",
            PaymentStatus::Refunded => "refunded",
        }
    }

    pub fn parse(value: &str) -> Option<Self> {
        [
            PaymentStatus::Pending,
            PaymentStatus::Processing,
            PaymentStatus::Succeeded,
            PaymentStatus::Failed,
            PaymentStatus::Refunded,
        ]
        .into_iter()
        .find(|s| s.as_str() == value)
    }
}

/// A payment: what `GET /api/v1/payments/{id}` answers and what every
/// `payment.*` event carries as data.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct PaymentData {
    pub id: Uuid,
    pub order_id: Uuid,
    /// The payer (owner of the order).
    #[schema(example = "usr_abc123")]
    pub user_id: String,
    /// Decimal string in `currency`.
    #[schema(example = "59.98")]
    pub amount: String,
    #[schema(example = "USD")]
    pub currency: String,
    #[schema(example = "card")]
    pub method: String,
    pub status: PaymentStatus,
    /// Why the payment failed (`card_declined`, `insufficient_funds`,
    /// `processing_error`), when it did.
    #[serde(default)]
    pub failure_reason: Option<String>,
    /// The provider's reference of the charge.
    #[serde(default)]
    pub provider_reference: Option<String>,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
}
