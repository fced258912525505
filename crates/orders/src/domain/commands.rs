//! What may be asked of an order.

use time::OffsetDateTime;
use uuid::Uuid;

use super::events::Shipment;
use super::money::{Currency, Money};
use super::returns::{ReturnLine, ReturnPolicy};
use super::status::OrderStatus;
use super::totals::{Charges, LineItem};
use super::values::{OrderDetails, OrderId, OrderNumber, Quantity, UserId};

/// Place a new order. Ids and the order number are chosen by the caller so the
/// aggregate stays pure (no clock, no randomness, no I/O).
#[derive(Debug, Clone)]
pub struct PlaceOrder {
    pub id: OrderId,
    pub number: OrderNumber,
    pub user_id: UserId,
    pub currency: Currency,
    pub items: Vec<LineItem>,
    pub details: OrderDetails,
    /// Tax, shipping and the coupon, from the shop's pricing at placement.
    pub charges: Charges,
}

/// Commands on an existing order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OrderCommand {
    /// An operator marks the order paid (outside the payment flow).
    MarkPaid,
    /// Its owner's personal data was erased: record it (once).
    ErasePersonalData,
    Ship(Shipment),
    Deliver,
    Cancel {
        reason: Option<String>,
    },
    /// The payments service charged the order.
    ConfirmPayment {
        payment_id: Uuid,
        amount: Money,
    },
    /// Manual capture: payments holds the amount for the order.
    ConfirmAuthorization {
        payment_id: Uuid,
        amount: Money,
    },
    /// Manual capture: the held amount (or part of it) was taken.
    RecordCapture {
        payment_id: Uuid,
        amount: Money,
    },
    /// Manual capture: the capture asked for at shipment was refused.
    RecordCaptureFailure {
        payment_id: Uuid,
        reason: String,
    },
    /// Manual capture: the hold was released unused (`reason`, e.g.
    /// `authorization_expired`, when payments gave one).
    RecordVoid {
        payment_id: Uuid,
        reason: Option<String>,
    },
    /// The owner returns some lines of the delivered order, `now`, under
    /// the shop's `policy`. Asking again with the same `return_id` changes
    /// nothing.
    RequestReturn {
        return_id: Uuid,
        lines: Vec<ReturnLine>,
        reason: String,
        now: OffsetDateTime,
        policy: ReturnPolicy,
    },
    /// An admin received a return: its lines' share is refunded.
    ReceiveReturn {
        return_id: Uuid,
    },
    /// A payment attempt failed.
    RecordPaymentFailure {
        payment_id: Option<Uuid>,
        reason: String,
    },
    /// A charge of the order was refunded, in full or in part.
    RecordRefund {
        payment_id: Uuid,
        /// The refund (absent: the payment's only refund, in full).
        refund_id: Option<Uuid>,
        amount: Money,
    },
    /// The order stayed unpaid too long: cancel it, but only if it is still
    /// pending (a payment that won the race keeps it).
    Expire,
    /// Add a line (pending orders only).
    AddItem {
        item: LineItem,
    },
    /// Change a line's quantity (pending orders only).
    ChangeItem {
        item_id: Uuid,
        quantity: Quantity,
    },
    /// Remove a line (pending orders only; never the last one).
    RemoveItem {
        item_id: Uuid,
    },
}

impl OrderCommand {
    /// The command that moves an order to `status`, if any does.
    pub fn to_reach(
        status: OrderStatus,
        reason: Option<String>,
        shipment: Shipment,
    ) -> Option<OrderCommand> {
        match status {
            OrderStatus::Pending => None,
            OrderStatus::Paid => Some(OrderCommand::MarkPaid),
            OrderStatus::Shipped => Some(OrderCommand::Ship(shipment)),
            OrderStatus::Delivered => Some(OrderCommand::Deliver),
            OrderStatus::Cancelled => Some(OrderCommand::Cancel { reason }),
        }
    }

    /// The status this command asks for, if it is a status change.
    pub fn target(&self) -> Option<OrderStatus> {
        match self {
            OrderCommand::MarkPaid => Some(OrderStatus::Paid),
            OrderCommand::Ship(_) => Some(OrderStatus::Shipped),
            OrderCommand::Deliver => Some(OrderStatus::Delivered),
            OrderCommand::Cancel { .. } => Some(OrderStatus::Cancelled),
            OrderCommand::ConfirmPayment { .. }
            | OrderCommand::ConfirmAuthorization { .. }
            | OrderCommand::RecordCapture { .. }
            | OrderCommand::RecordCaptureFailure { .. }
            | OrderCommand::RecordVoid { .. }
            | OrderCommand::RequestReturn { .. }
            | OrderCommand::ReceiveReturn { .. }
            | OrderCommand::RecordPaymentFailure { .. }
            | OrderCommand::RecordRefund { .. }
            | OrderCommand::Expire
            | OrderCommand::ErasePersonalData
            | OrderCommand::AddItem { .. }
            | OrderCommand::ChangeItem { .. }
            | OrderCommand::RemoveItem { .. } => None,
        }
    }
}
