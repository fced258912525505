//! `order.*` events. Their data is the full order state after the change; the
//! REST API answers with the same shape, so a subscriber and a client see one
//! representation of an order.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use utoipa::ToSchema;
use uuid::Uuid;

/// The `source` attribute of every order event.
pub const SOURCE: &str = "/orders";
/// The topic exchange order events are published to.
pub const EXCHANGE: &str = "orders.events";
/// The token subject of the orders service when it calls payments, and the
/// actor it records for what it does on its own.
pub const SERVICE_SUBJECT: &str = "svc-orders";

/// The order event types; each is also the routing key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
pub enum OrderEventType {
    #[serde(rename = "order.created")]
    Created,
    #[serde(rename = "order.paid")]
    Paid,
    #[serde(rename = "order.shipped")]
    Shipped,
    #[serde(rename = "order.delivered")]
    Delivered,
    #[serde(rename = "order.cancelled")]
    Cancelled,
    /// A payment attempt failed; the order stays `pending` and payable.
    #[serde(rename = "order.payment_failed")]
    PaymentFailed,
    /// A charge succeeded but does not pay the order (cancelled or already
    /// paid, or not exactly its total); it is being refunded.
    #[serde(rename = "order.payment_rejected")]
    PaymentRejected,
    /// A charge of the order was refunded (its payment after a cancellation,
    /// or a rejected charge).
    #[serde(rename = "order.refunded")]
    Refunded,
    /// A line was added to a pending order.
    #[serde(rename = "order.item_added")]
    ItemAdded,
    /// A line's quantity changed on a pending order.
    #[serde(rename = "order.item_changed")]
    ItemChanged,
    /// A line was removed from a pending order.
    #[serde(rename = "order.item_removed")]
    ItemRemoved,
    /// Shipping an order whose payment is only authorized: its capture was
    /// asked for; the order ships when it succeeds.
    #[serde(rename = "order.capture_requested")]
    CaptureRequested,
    /// The capture asked for at shipment was declined; the order is not
    /// shipped.
    #[serde(rename = "order.capture_failed")]
    CaptureFailed,
    /// The order's authorized payment was captured outside a shipment.
    #[serde(rename = "order.payment_captured")]
    PaymentCaptured,
    /// The order's authorized payment was released (voided) unused.
    #[serde(rename = "order.payment_voided")]
    PaymentVoided,
    /// The owner asked to return some lines of the delivered order.
    #[serde(rename = "order.return_requested")]
    ReturnRequested,
    /// The shop received a return; the lines' share is being refunded.
    #[serde(rename = "order.return_received")]
    ReturnReceived,
    /// Its owner's personal data was erased on request: the addresses,
    /// notes and reasons of the order are gone for good (its amounts, items
    /// and states stay); a subscriber that kept a copy erases it.
    #[serde(rename = "order.personal_data_erased")]
    PersonalDataErased,
}

impl OrderEventType {
    pub const ALL: [OrderEventType; 18] = [
        OrderEventType::Created,
        OrderEventType::Paid,
        OrderEventType::Shipped,
        OrderEventType::Delivered,
        OrderEventType::Cancelled,
        OrderEventType::PaymentFailed,
        OrderEventType::PaymentRejected,
        OrderEventType::Refunded,
        OrderEventType::ItemAdded,
        OrderEventType::ItemChanged,
        OrderEventType::ItemRemoved,
        OrderEventType::CaptureRequested,
        OrderEventType::CaptureFailed,
        OrderEventType::PaymentCaptured,
        OrderEventType::PaymentVoided,
        OrderEventType::ReturnRequested,
        OrderEventType::ReturnReceived,
        OrderEventType::PersonalDataErased,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            OrderEventType::Created => "order.created",
            OrderEventType::Paid => "order.paid",
            OrderEventType::Shipped => "order.shipped",
            OrderEventType::Delivered => "order.delivered",
            OrderEventType::Cancelled => "order.cancelled",
            OrderEventType::PaymentFailed => "order.payment_failed",
            OrderEventType::PaymentRejected => "order.payment_rejected",
            OrderEventType::Refunded => "order.refunded",
            OrderEventType::ItemAdded => "order.item_added",
            OrderEventType::ItemChanged => "order.item_changed",
            OrderEventType::ItemRemoved => "order.item_removed",
            OrderEventType::CaptureRequested => "order.capture_requested",
            OrderEventType::CaptureFailed => "order.capture_failed",
            OrderEventType::PaymentCaptured => "order.payment_captured",
            OrderEventType::PaymentVoided => "order.payment_voided",
            OrderEventType::ReturnRequested => "order.return_requested",
            OrderEventType::ReturnReceived => "order.return_received",
            OrderEventType::PersonalDataErased => "order.personal_data_erased",
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

/// The lifecycle state of an order: pending, paid, shipped, delivered;
/// or cancelled (from pending, paid or shipped).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum OrderStatus {
    Pending,
    Paid,
    Shipped,
    Delivered,
    Cancelled,
}

impl OrderStatus {
    pub const ALL: [OrderStatus; 5] = [
        OrderStatus::Pending,
        OrderStatus::Paid,
        OrderStatus::Shipped,
        OrderStatus::Delivered,
        OrderStatus::Cancelled,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            OrderStatus::Pending => "pending",
            OrderStatus::Paid => "paid",
            OrderStatus::Shipped => "shipped",
            OrderStatus::Delivered => "delivered",
            OrderStatus::Cancelled => "cancelled",
        }
    }

    pub fn parse(value: &str) -> Option<Self> {
        Self::ALL
            .into_iter()
            .find(|status| status.as_str() == value)
    }

    /// The edges of the lifecycle: `pending → paid → shipped → delivered`, and
    /// `cancelled` from `pending`, `paid` or `shipped`.
    pub fn can_become(self, next: OrderStatus) -> bool {
        use OrderStatus::*;
        matches!(
            (self, next),
            (Pending, Paid)
                | (Paid, Shipped)
                | (Shipped, Delivered)
                | (Pending | Paid | Shipped, Cancelled)
        )
    }
}

impl std::fmt::Display for OrderStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Whether the order has been paid: `pending` until a payment succeeds,
/// `failed` after a failed attempt (still payable), `refunded` after a refund.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum PaymentStatus {
    /// No payment attempt has completed yet.
    Pending,
    /// The last attempt failed; the order is still payable.
    Failed,
    Paid,
    /// Manual capture: the total is held on the card (the order is `paid`:
    /// the money is secured); it is taken when the order ships.
    Authorized,
    /// Manual capture: the hold was released (the order was cancelled
    /// before shipping); nothing was taken.
    Voided,
    /// Part of what was paid was given back (a line refunded, a return).
    PartiallyRefunded,
    /// Everything paid was given back (a cancellation, a refund in full).
    Refunded,
}

impl PaymentStatus {
    pub const ALL: [PaymentStatus; 7] = [
        PaymentStatus::Pending,
        PaymentStatus::Failed,
        PaymentStatus::Paid,
        PaymentStatus::Authorized,
        PaymentStatus::Voided,
        PaymentStatus::PartiallyRefunded,
        PaymentStatus::Refunded,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            PaymentStatus::Pending => "pending",
            PaymentStatus::Failed => "failed",
            PaymentStatus::Paid => "paid",
            PaymentStatus::Authorized => "authorized",
            PaymentStatus::Voided => "voided",
            PaymentStatus::PartiallyRefunded => "partially_refunded",
            PaymentStatus::Refunded => "refunded",
        }
    }

    pub fn parse(value: &str) -> Option<Self> {
        Self::ALL
            .into_iter()
            .find(|status| status.as_str() == value)
    }
}

/// An order: what `GET /api/v1/orders/{id}` answers and what every `order.*`
/// event carries as data. Money is a decimal string in `currency`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct OrderData {
    pub id: Uuid,
    /// Human-readable unique number, e.g. `ORD-7K3M-9QX2`.
    #[schema(example = "ORD-7K3M-9QX2")]
    pub order_number: String,
    /// The owner (the `sub` of the token that placed it).
    #[schema(example = "usr_abc123")]
    pub user_id: String,
    pub status: OrderStatus,
    pub payment_status: PaymentStatus,
    /// ISO 4217 code.
    #[schema(example = "USD")]
    pub currency: String,
    pub items: Vec<OrderItemData>,
    /// Absent for what is not shipped (digital goods).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shipping_address: Option<AddressData>,
    /// The shipping address unless another was given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub billing_address: Option<AddressData>,
    /// Lower case, e.g. `standard`.
    #[serde(default)]
    #[schema(example = "standard")]
    pub shipping_method: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notes: Option<String>,
    /// As the client named it, e.g. `CREDIT_CARD` or `card`.
    #[serde(default)]
    #[schema(example = "CREDIT_CARD")]
    pub payment_method: Option<String>,
    /// The coupon whose discount is in `discount`.
    #[serde(default)]
    #[schema(example = "SUMMER10")]
    pub coupon_code: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cancellation_reason: Option<String>,
    /// Who carries the order, once shipped (when the fulfilment said).
    #[serde(default)]
    #[schema(example = "UPS")]
    pub carrier: Option<String>,
    #[serde(default)]
    #[schema(example = "1Z999AA10123456784")]
    pub tracking_number: Option<String>,
    /// Sum of the items' subtotals.
    #[schema(example = "59.98")]
    pub subtotal: String,
    #[schema(example = "0.00")]
    pub discount: String,
    #[schema(example = "0.00")]
    pub tax: String,
    #[schema(example = "0.00")]
    pub shipping: String,
    /// `subtotal - discount + tax + shipping`.
    #[schema(example = "59.98")]
    pub total: String,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
    /// When the order was delivered.
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub completed_at: Option<OffsetDateTime>,
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub cancelled_at: Option<OffsetDateTime>,
    /// Returns of the delivered order: absent when there are none, and in
    /// the entries of a list page (`GET /api/v1/orders/{id}` has them).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub returns: Vec<ReturnData>,
    /// Number of events in the order's history; use it with `If-Match`.
    #[schema(example = 1)]
    pub version: u32,
}

/// A return of some lines of a delivered order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ReturnData {
    pub id: Uuid,
    /// `requested` (on its way back) or `received` (refund under way or done).
    #[schema(example = "received")]
    pub status: String,
    #[schema(example = "damaged")]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    pub items: Vec<ReturnItemData>,
    /// What receiving it refunds: the lines' price with their share of the
    /// discount and tax (shipping is not refunded). Set once received.
    #[serde(default)]
    #[schema(example = "12.50")]
    pub refund_amount: Option<String>,
    #[serde(with = "time::serde::rfc3339")]
    pub requested_at: OffsetDateTime,
}

/// Units of one order line in a return.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ReturnItemData {
    pub item_id: Uuid,
    #[schema(example = 1)]
    pub quantity: u32,
}

/// One line of an order, with the price snapshotted when it was placed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct OrderItemData {
    pub id: Uuid,
    #[schema(example = "prod_123")]
    pub product_id: String,
    /// The product's variant, when it has one.
    #[serde(default)]
    #[schema(example = "123e4567-e89b-12d3-a456-426614174002")]
    pub variant_id: Option<String>,
    #[serde(default)]
    #[schema(example = "T-shirt")]
    pub name: Option<String>,
    #[serde(default)]
    #[schema(example = "TS-1")]
    pub sku: Option<String>,
    #[schema(example = 2, minimum = 1)]
    pub quantity: u32,
    #[schema(example = "29.99")]
    pub unit_price: String,
    /// `unit_price × quantity`.
    #[schema(example = "59.98")]
    pub subtotal: String,
}

/// Which of an order's addresses this is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum AddressType {
    Shipping,
    Billing,
}

/// A postal address, with the technical design's field names.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct AddressData {
    pub address_type: AddressType,
    #[schema(example = "Ada")]
    pub first_name: String,
    #[schema(example = "Lovelace")]
    pub last_name: String,
    #[schema(example = "12 St James's Square")]
    pub address_line1: String,
    #[serde(default)]
    pub address_line2: Option<String>,
    #[schema(example = "London")]
    pub city: String,
    /// State, province or county.
    #[serde(default)]
    pub state: Option<String>,
    #[schema(example = "SW1Y 4JH")]
    pub postal_code: String,
    /// ISO 3166-1 alpha-2 (an alpha-3 code sent in is converted).
    #[schema(example = "GB")]
    pub country: String,
    #[serde(default)]
    pub phone: Option<String>,
    #[serde(default)]
    pub email: Option<String>,
}
