//! `payment.*` events and the payment representation (REST and event data).

use serde::{Deserialize, Serialize};

use crate::money::Amount;
use time::OffsetDateTime;
use utoipa::ToSchema;
use uuid::Uuid;

/// The `source` attribute of every payment event.
pub const SOURCE: &str = "/payments";
/// The topic exchange payment events are published to.
pub const EXCHANGE: &str = "payments.events";
/// The token subject of the payments service when it calls orders, and the
/// actor orders records for what payments' events cause.
pub const SERVICE_SUBJECT: &str = "svc-payments";

/// The payment event types; each is also the routing key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
pub enum PaymentEventType {
    #[serde(rename = "payment.successful")]
    Successful,
    #[serde(rename = "payment.failed")]
    Failed,
    #[serde(rename = "payment.refunded")]
    Refunded,
    /// Manual capture: the money is held on the card, not taken yet.
    #[serde(rename = "payment.authorized")]
    Authorized,
    /// Manual capture: the held money (or part of it) was taken.
    #[serde(rename = "payment.captured")]
    Captured,
    /// Manual capture: the hold was released before any capture.
    #[serde(rename = "payment.voided")]
    Voided,
}

impl PaymentEventType {
    pub const ALL: [PaymentEventType; 6] = [
        PaymentEventType::Successful,
        PaymentEventType::Failed,
        PaymentEventType::Refunded,
        PaymentEventType::Authorized,
        PaymentEventType::Captured,
        PaymentEventType::Voided,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            PaymentEventType::Successful => "payment.successful",
            PaymentEventType::Failed => "payment.failed",
            PaymentEventType::Refunded => "payment.refunded",
            PaymentEventType::Authorized => "payment.authorized",
            PaymentEventType::Captured => "payment.captured",
            PaymentEventType::Voided => "payment.voided",
        }
    }

    pub fn parse(value: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.as_str() == value)
    }

    /// The `dataschema` attribute: where the JSON Schema of this event's data lives.
    pub fn data_schema(self) -> String {
        crate::schema::data_schema_url(self.as_str())
    }
}

/// Where a payment stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum PaymentStatus {
    Pending,
    Processing,
    /// Manual capture: the amount is held, nothing is taken yet.
    Authorized,
    /// Manual capture: the hold was released; nothing was taken.
    Voided,
    /// Captured (in full or in part): the money is taken.
    Succeeded,
    Failed,
    /// Part of what was captured was given back; the rest is kept.
    PartiallyRefunded,
    /// Everything captured was given back.
    Refunded,
}

impl PaymentStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            PaymentStatus::Pending => "pending",
            PaymentStatus::Processing => "processing",
            PaymentStatus::Authorized => "authorized",
            PaymentStatus::Voided => "voided",
            PaymentStatus::Succeeded => "succeeded",
            PaymentStatus::Failed => "failed",
            PaymentStatus::PartiallyRefunded => "partially_refunded",
            PaymentStatus::Refunded => "refunded",
        }
    }

    pub fn parse(value: &str) -> Option<Self> {
        [
            PaymentStatus::Pending,
            PaymentStatus::Processing,
            PaymentStatus::Authorized,
            PaymentStatus::Voided,
            PaymentStatus::Succeeded,
            PaymentStatus::Failed,
            PaymentStatus::PartiallyRefunded,
            PaymentStatus::Refunded,
        ]
        .into_iter()
        .find(|s| s.as_str() == value)
    }
}

/// When a payment's money is taken.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum CaptureMethod {
    /// Authorized and captured at once (`payment.successful`).
    #[default]
    Automatic,
    /// Authorized now (`payment.authorized`), captured later with
    /// `POST /api/v1/payments/{id}/capture` (`payment.captured`) or released
    /// with `…/void` (`payment.voided`).
    Manual,
}

impl CaptureMethod {
    pub fn as_str(self) -> &'static str {
        match self {
            CaptureMethod::Automatic => "automatic",
            CaptureMethod::Manual => "manual",
        }
    }

    pub fn parse(value: &str) -> Option<Self> {
        [CaptureMethod::Automatic, CaptureMethod::Manual]
            .into_iter()
            .find(|m| m.as_str() == value)
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
    /// `automatic` or `manual`; absent in events written before manual
    /// capture existed (automatic).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub capture_method: Option<CaptureMethod>,
    /// What was captured (taken), a decimal string in `currency`; absent in
    /// events written before amounts were recorded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(example = "59.98")]
    pub captured_amount: Option<String>,
    /// What was given back so far (refunds accepted, done or in progress).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(example = "0.00")]
    pub refunded_amount: Option<String>,
    /// On `payment.refunded` only: the refund this event reports.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refund: Option<RefundData>,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
}

/// Where a refund stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum RefundStatus {
    /// Accepted (its amount is reserved); the provider has not refunded yet.
    Pending,
    /// The provider refunded it.
    Succeeded,
    /// The provider refused it for good; its amount is refundable again.
    Failed,
}

impl RefundStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            RefundStatus::Pending => "pending",
            RefundStatus::Succeeded => "succeeded",
            RefundStatus::Failed => "failed",
        }
    }

    pub fn parse(value: &str) -> Option<Self> {
        [
            RefundStatus::Pending,
            RefundStatus::Succeeded,
            RefundStatus::Failed,
        ]
        .into_iter()
        .find(|s| s.as_str() == value)
    }
}

// ---------------------------------------------------------------------------
// Requests payments serves and orders sends (its jobs charge, capture and
// refund through them): one shape for both sides.

/// Charge an order. Send a provider token, never card data.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreatePaymentBody {
    pub order_id: Uuid,
    /// A decimal string (`"59.98"`) or a JSON number (`59.98`, read exactly
    /// from its text) in `currency`; must equal the order's total.
    pub amount: Amount,
    #[schema(example = "USD", pattern = "^[A-Z]{3}$")]
    pub currency: String,
    #[schema(
        example = "card",
        min_length = 1,
        max_length = 50,
        pattern = "^[^\\s]+$"
    )]
    pub method: String,
    /// A provider token such as `tok_visa`.
    #[schema(
        example = "tok_visa",
        min_length = 1,
        max_length = 200,
        pattern = "^[^\\s]+$"
    )]
    pub token: String,
    /// The payer, for admins paying on a user's behalf (defaults to the caller).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_id: Option<String>,
    /// `automatic` (default): the money is taken now. `manual`: it is held
    /// (`authorized`) and taken by `POST /api/v1/payments/{id}/capture`, or
    /// released by `…/void`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub capture_method: Option<CaptureMethod>,
}

/// Why a refund is asked for (`POST /api/v1/payments/{id}/refund`, all that
/// remains).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RefundBody {
    /// Recorded with the refund, e.g. `order_cancelled`, `amount_mismatch`.
    #[schema(example = "order_cancelled", max_length = 200)]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// A refund of (part of) a payment.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateRefundBody {
    /// How much to give back, in the payment's currency (a decimal string or
    /// a JSON number read exactly); all that remains when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub amount: Option<Amount>,
    /// The payment's currency, if the client names it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(example = "USD", pattern = "^[A-Z]{3}$")]
    pub currency: Option<String>,
    /// Recorded with the refund (`damaged`, `goodwill`, …).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(example = "damaged", max_length = 200)]
    pub reason: Option<String>,
    /// The order lines it is for, when it is for lines.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(max_items = 100)]
    pub items: Option<Vec<RefundLine>>,
}

/// How much of an authorization to capture.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CaptureBody {
    /// In the payment's currency; the whole authorization when absent. The
    /// rest of the hold is released.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub amount: Option<Amount>,
}

/// An order line a refund is for (a return, a goodwill refund of one line).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RefundLine {
    /// The order line's id.
    pub item_id: Uuid,
    #[schema(minimum = 1)]
    pub quantity: u32,
}

/// A refund of (part of) a payment: what `GET /api/v1/payments/{id}/refunds`
/// lists and what `payment.refunded` carries in `refund`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct RefundData {
    pub id: Uuid,
    pub payment_id: Uuid,
    /// Decimal string in `currency`.
    #[schema(example = "12.50")]
    pub amount: String,
    #[schema(example = "USD")]
    pub currency: String,
    pub status: RefundStatus,
    #[schema(example = "damaged")]
    pub reason: String,
    /// The order lines it is for, when given.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub items: Vec<RefundLine>,
    /// The provider's reference of the refund, once made.
    #[serde(default)]
    pub provider_reference: Option<String>,
    #[serde(default)]
    pub failure_reason: Option<String>,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
}
