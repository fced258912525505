//! What happened to an order: the events of its stream. Each event's name
//! (its CloudEvents type and routing key) is [`OrderEventType`]'s, in
//! `contracts`, the one owner of every name that crosses a process.

pub use contracts::order::OrderEventType;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use uuid::Uuid;

use super::money::{Currency, Money};
use super::returns::ReturnLine;
use super::status::OrderStatus;
use super::totals::{Charges, LineItem, Totals};
use super::values::{OrderDetails, OrderId, OrderNumber, Quantity, UserId};

/// What happened to an order: past tense, immutable once recorded. These are the
/// event store's payloads; a change to a shape needs a new `version` and an
/// upcaster in [`OrderEvent::decode`]. Serialized without a tag: the type is
/// stored beside the payload.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum OrderEvent {
    Created(Box<OrderCreated>),
    Paid(OrderPaid),
    Shipped(OrderShipped),
    Delivered(OrderDelivered),
    PersonalDataErased(OrderPersonalDataErased),
    Cancelled(OrderCancelled),
    PaymentFailed(OrderPaymentFailed),
    PaymentRejected(OrderPaymentRejected),
    Refunded(OrderRefunded),
    ItemAdded(OrderItemAdded),
    ItemChanged(OrderItemChanged),
    ItemRemoved(OrderItemRemoved),
    CaptureRequested(OrderCaptureRequested),
    CaptureFailed(OrderCaptureFailed),
    PaymentCaptured(OrderPaymentCaptured),
    PaymentVoided(OrderPaymentVoided),
    ReturnRequested(OrderReturnRequested),
    ReturnReceived(OrderReturnReceived),
}

/// The owner asked to return some lines of the delivered order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderReturnRequested {
    pub return_id: Uuid,
    pub lines: Vec<ReturnLine>,
    /// Personal (sealed at rest): empty once its owner's data is erased.
    #[serde(default)]
    pub reason: String,
}

/// The shop received a return: `refund` (the lines' share of what was
/// paid) is refunded from `payment_id` (none when no payment paid the order).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderReturnReceived {
    pub return_id: Uuid,
    pub refund: Money,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payment_id: Option<Uuid>,
}

/// Shipping an order whose payment is only authorized: its capture was
/// asked for; the order ships (`order.shipped`) when the capture succeeds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderCaptureRequested {
    pub payment_id: Uuid,
    pub amount: Money,
    /// What the shipment will carry once the money is taken.
    #[serde(flatten)]
    pub shipment: Shipment,
}

/// The capture asked for at shipment was declined: the order is not shipped.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderCaptureFailed {
    pub payment_id: Uuid,
    /// `capture_declined`, `not_capturable`, …
    pub reason: String,
}

/// The authorized payment was captured outside a shipment (an operator).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderPaymentCaptured {
    pub payment_id: Uuid,
    pub amount: Money,
}

/// The authorized payment was released unused.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderPaymentVoided {
    pub payment_id: Uuid,
}

/// A line was added; the totals after it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderItemAdded {
    pub item: LineItem,
    pub totals: Totals,
}

/// A line's quantity changed; the totals after it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderItemChanged {
    pub item_id: Uuid,
    pub quantity: Quantity,
    pub totals: Totals,
}

/// A line was removed; the totals after it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderItemRemoved {
    pub item_id: Uuid,
    pub totals: Totals,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderCreated {
    pub order_number: OrderNumber,
    pub user_id: UserId,
    pub currency: Currency,
    pub items: Vec<LineItem>,
    #[serde(flatten)]
    pub details: OrderDetails,
    /// Absent in orders placed before charges existed (no tax, no shipping).
    #[serde(default)]
    pub charges: Charges,
    pub totals: Totals,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderPaid {
    pub amount: Money,
    /// The payment that paid it (absent when an operator marked it paid).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payment_id: Option<Uuid>,
    /// Manual capture: the amount is held (authorized), taken at shipment.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub authorized: bool,
}

/// A payment attempt failed; the order stays payable.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderPaymentFailed {
    pub payment_id: Option<Uuid>,
    /// `card_declined`, `insufficient_funds`, `amount_mismatch`, …
    pub reason: String,
}

/// A charge succeeded but does not pay the order (it was cancelled or paid
/// already, or the amount is not its total): the charge is refunded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderPaymentRejected {
    pub payment_id: Uuid,
    pub amount: Money,
    /// `order_cancelled`, `order_paid`, … or `amount_mismatch: …`.
    pub reason: String,
}

/// A charge of the order was refunded, in full or in part: its payment, or a
/// rejected charge.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderRefunded {
    pub payment_id: Uuid,
    /// What this refund gave back.
    pub amount: Money,
    /// The refund (absent in events recorded before refunds had ids: each
    /// of those refunded its payment in full).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refund_id: Option<Uuid>,
}

/// Who carries a shipped order, and its tracking number (technical design
/// 5.2), when the fulfilment gives them.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Shipment {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub carrier: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tracking_number: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderShipped {
    #[serde(flatten)]
    pub shipment: Shipment,
    /// Manual capture: what the capture at shipment took.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub captured: Option<Money>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderDelivered {}

/// Its owner's personal data was erased on request (its data key
/// destroyed): from here on the order has no addresses, notes or reasons.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderPersonalDataErased {}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderCancelled {
    /// The status the order had when it was cancelled.
    pub from: OrderStatus,
    pub reason: Option<String>,
}

impl OrderEvent {
    pub fn kind(&self) -> OrderEventType {
        match self {
            OrderEvent::Created(_) => OrderEventType::Created,
            OrderEvent::Paid(_) => OrderEventType::Paid,
            OrderEvent::Shipped(_) => OrderEventType::Shipped,
            OrderEvent::Delivered(_) => OrderEventType::Delivered,
            OrderEvent::Cancelled(_) => OrderEventType::Cancelled,
            OrderEvent::PaymentFailed(_) => OrderEventType::PaymentFailed,
            OrderEvent::PaymentRejected(_) => OrderEventType::PaymentRejected,
            OrderEvent::Refunded(_) => OrderEventType::Refunded,
            OrderEvent::ItemAdded(_) => OrderEventType::ItemAdded,
            OrderEvent::ItemChanged(_) => OrderEventType::ItemChanged,
            OrderEvent::ItemRemoved(_) => OrderEventType::ItemRemoved,
            OrderEvent::CaptureRequested(_) => OrderEventType::CaptureRequested,
            OrderEvent::CaptureFailed(_) => OrderEventType::CaptureFailed,
            OrderEvent::PaymentCaptured(_) => OrderEventType::PaymentCaptured,
            OrderEvent::PaymentVoided(_) => OrderEventType::PaymentVoided,
            OrderEvent::ReturnRequested(_) => OrderEventType::ReturnRequested,
            OrderEvent::ReturnReceived(_) => OrderEventType::ReturnReceived,
            OrderEvent::PersonalDataErased(_) => OrderEventType::PersonalDataErased,
        }
    }

    /// The public event type (`order.created`, …), also the routing key.
    pub fn event_type(&self) -> &'static str {
        self.kind().as_str()
    }

    /// Version of this event's stored payload shape.
    pub fn event_version(&self) -> u16 {
        1
    }

    /// Reads a stored payload back, by its type and version (the upcasting
    /// point: a new shape of a kind gets its own version arm here).
    pub fn decode(
        event_type: &str,
        version: u16,
        payload: serde_json::Value,
    ) -> Result<OrderEvent, DecodeError> {
        let unknown = || DecodeError::Unknown {
            event_type: event_type.to_owned(),
            version,
        };
        let kind = OrderEventType::parse(event_type).ok_or_else(unknown)?;
        if version != 1 {
            return Err(unknown());
        }
        let event = match kind {
            OrderEventType::Created => {
                OrderEvent::Created(Box::new(serde_json::from_value(payload)?))
            }
            OrderEventType::Paid => OrderEvent::Paid(serde_json::from_value(payload)?),
            OrderEventType::Shipped => OrderEvent::Shipped(serde_json::from_value(payload)?),
            OrderEventType::Delivered => OrderEvent::Delivered(serde_json::from_value(payload)?),
            OrderEventType::PersonalDataErased => {
                OrderEvent::PersonalDataErased(serde_json::from_value(payload)?)
            }
            OrderEventType::Cancelled => OrderEvent::Cancelled(serde_json::from_value(payload)?),
            OrderEventType::PaymentFailed => {
                OrderEvent::PaymentFailed(serde_json::from_value(payload)?)
            }
            OrderEventType::PaymentRejected => {
                OrderEvent::PaymentRejected(serde_json::from_value(payload)?)
            }
            OrderEventType::Refunded => OrderEvent::Refunded(serde_json::from_value(payload)?),
            OrderEventType::ItemAdded => OrderEvent::ItemAdded(serde_json::from_value(payload)?),
            OrderEventType::ItemChanged => {
                OrderEvent::ItemChanged(serde_json::from_value(payload)?)
            }
            OrderEventType::ItemRemoved => {
                OrderEvent::ItemRemoved(serde_json::from_value(payload)?)
            }
            OrderEventType::CaptureRequested => {
                OrderEvent::CaptureRequested(serde_json::from_value(payload)?)
            }
            OrderEventType::CaptureFailed => {
                OrderEvent::CaptureFailed(serde_json::from_value(payload)?)
            }
            OrderEventType::PaymentCaptured => {
                OrderEvent::PaymentCaptured(serde_json::from_value(payload)?)
            }
            OrderEventType::PaymentVoided => {
                OrderEvent::PaymentVoided(serde_json::from_value(payload)?)
            }
            OrderEventType::ReturnRequested => {
                OrderEvent::ReturnRequested(serde_json::from_value(payload)?)
            }
            OrderEventType::ReturnReceived => {
                OrderEvent::ReturnReceived(serde_json::from_value(payload)?)
            }
        };
        Ok(event)
    }

    /// Whether it changes the order's lines.
    pub fn changes_items(&self) -> bool {
        matches!(
            self.kind(),
            OrderEventType::ItemAdded | OrderEventType::ItemChanged | OrderEventType::ItemRemoved
        )
    }
}

#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    #[error("unknown event {event_type} v{version}")]
    Unknown { event_type: String, version: u16 },
    #[error("undecodable payload: {0}")]
    Payload(#[from] serde_json::Error),
}

/// An event as recorded in the order's stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recorded {
    pub order_id: OrderId,
    /// 1 for the first event of an order, then gap-free.
    pub sequence: u32,
    pub occurred_at: OffsetDateTime,
    pub event: OrderEvent,
}
