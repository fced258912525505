//! The order aggregate: a pure state machine.
//!
//! `Order::place` and `Order::handle` decide: they take a command and return the
//! events it causes, or a rule violation. `apply` evolves the state by one
//! recorded event and is the only way state changes, so replaying an order's
//! history always rebuilds exactly the state that was live.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use uuid::Uuid;

use super::money::{Currency, Money, MoneyError};
use super::promotions::AppliedCoupon;
use super::values::{Address, OrderNumber, ProductId, Quantity, UserId, VariantId};

/// Most line items an order may have.
pub const MAX_ITEMS: usize = 100;

/// The cancellation reason of an order that stayed unpaid too long.
pub const EXPIRED_REASON: &str = "payment_timeout";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct OrderId(pub Uuid);

impl std::fmt::Display for OrderId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
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

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PaymentStatus {
    /// No payment attempt has completed yet.
    Pending,
    /// The last attempt failed; the order is still payable.
    Failed,
    Paid,
    /// The payment was refunded (after a cancellation).
    Refunded,
}

impl PaymentStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            PaymentStatus::Pending => "pending",
            PaymentStatus::Failed => "failed",
            PaymentStatus::Paid => "paid",
            PaymentStatus::Refunded => "refunded",
        }
    }

    pub fn parse(value: &str) -> Option<Self> {
        [
            PaymentStatus::Pending,
            PaymentStatus::Failed,
            PaymentStatus::Paid,
            PaymentStatus::Refunded,
        ]
        .into_iter()
        .find(|status| status.as_str() == value)
    }
}

/// One line of an order. Price, name and SKU are a snapshot taken when the
/// order was placed: later catalogue changes do not alter a placed order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LineItem {
    pub id: Uuid,
    pub product_id: ProductId,
    /// The product's variant (size, colour, …), when it has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variant_id: Option<VariantId>,
    pub name: Option<String>,
    pub sku: Option<String>,
    pub quantity: Quantity,
    pub unit_price: Money,
}

impl LineItem {
    pub fn subtotal(&self) -> Result<Money, MoneyError> {
        self.unit_price.checked_mul(self.quantity.get())
    }
}

/// What the customer pays, all in the order's currency.
/// Invariant: `total = subtotal - discount + tax + shipping`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Totals {
    pub subtotal: Money,
    pub discount: Money,
    pub tax: Money,
    pub shipping: Money,
    pub total: Money,
}

/// What is charged on top of the items, fixed when the order is placed (so a
/// later change of rates never alters a placed order).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Charges {
    /// Tax on the discounted subtotal, in basis points (825 = 8.25%).
    pub tax_rate_bp: u32,
    /// The shipping fee of the chosen method, in the order's currency.
    pub shipping: Option<Money>,
    /// The coupon applied when the order was placed (the discount).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub coupon: Option<AppliedCoupon>,
}

impl Totals {
    /// Totals of `items` under `charges`: the coupon's discount off the
    /// subtotal, tax on the subtotal after discount, rounded half up to the
    /// minor unit, plus the shipping fee.
    pub fn compute(
        currency: Currency,
        items: &[LineItem],
        charges: &Charges,
    ) -> Result<Totals, MoneyError> {
        let subtotal = items.iter().try_fold(Money::zero(currency), |sum, item| {
            sum.checked_add(item.subtotal()?)
        })?;
        let discount = match &charges.coupon {
            Some(coupon) => coupon.discount_on(subtotal)?,
            None => Money::zero(currency),
        };
        let tax = subtotal
            .saturating_sub(discount)?
            .apply_rate_bp(charges.tax_rate_bp)?;
        let shipping = charges.shipping.unwrap_or(Money::zero(currency));
        Totals::new(subtotal, discount, tax, shipping)
    }

    pub fn new(
        subtotal: Money,
        discount: Money,
        tax: Money,
        shipping: Money,
    ) -> Result<Totals, MoneyError> {
        let total = subtotal
            .saturating_sub(discount)?
            .checked_add(tax)?
            .checked_add(shipping)?;
        Ok(Totals {
            subtotal,
            discount,
            tax,
            shipping,
            total,
        })
    }
}

/// An order as it stands after its history.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Order {
    pub id: OrderId,
    pub number: OrderNumber,
    pub user_id: UserId,
    pub status: OrderStatus,
    pub payment_status: PaymentStatus,
    pub currency: Currency,
    pub items: Vec<LineItem>,
    /// None for what is not shipped (digital goods).
    pub shipping_address: Option<Address>,
    pub billing_address: Option<Address>,
    pub shipping_method: Option<String>,
    pub notes: Option<String>,
    pub payment_method: Option<String>,
    pub charges: Charges,
    pub totals: Totals,
    pub cancellation_reason: Option<String>,
    /// Carrier and tracking number, once shipped (when given).
    pub shipment: Shipment,
    /// When it was delivered.
    pub completed_at: Option<OffsetDateTime>,
    pub cancelled_at: Option<OffsetDateTime>,
    /// Which charges paid, were rejected, were refunded. Known from the
    /// history only (an order read from the projection has it empty).
    pub ledger: PaymentLedger,
    pub created_at: OffsetDateTime,
    pub updated_at: OffsetDateTime,
    /// The sequence number of the last event applied (1 after creation).
    pub version: u32,
}

/// The charges an order has seen, by payment id.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PaymentLedger {
    /// The payment that paid the order.
    pub paid_by: Option<Uuid>,
    /// Successful charges the order did not accept (to be refunded).
    pub rejected: Vec<Uuid>,
    /// Charges refunded.
    pub refunded: Vec<Uuid>,
}

impl PaymentLedger {
    fn knows(&self, payment_id: Uuid) -> bool {
        self.paid_by == Some(payment_id)
            || self.rejected.contains(&payment_id)
            || self.refunded.contains(&payment_id)
    }
}

/// Place a new order. Ids and the order number are chosen by the caller so the
/// aggregate stays pure (no clock, no randomness, no I/O).
#[derive(Debug, Clone)]
pub struct PlaceOrder {
    pub id: OrderId,
    pub number: OrderNumber,
    pub user_id: UserId,
    pub currency: Currency,
    pub items: Vec<LineItem>,
    pub shipping_address: Option<Address>,
    pub billing_address: Option<Address>,
    pub shipping_method: Option<String>,
    pub notes: Option<String>,
    pub payment_method: Option<String>,
    /// Tax, shipping and the coupon, from the shop's pricing at placement.
    pub charges: Charges,
}

/// Commands on an existing order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OrderCommand {
    /// An operator marks the order paid (outside the payment flow).
    MarkPaid,
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
    /// A payment attempt failed.
    RecordPaymentFailure {
        payment_id: Option<Uuid>,
        reason: String,
    },
    /// The order's payment was refunded.
    RecordRefund {
        payment_id: Uuid,
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
            | OrderCommand::RecordPaymentFailure { .. }
            | OrderCommand::RecordRefund { .. }
            | OrderCommand::Expire
            | OrderCommand::AddItem { .. }
            | OrderCommand::ChangeItem { .. }
            | OrderCommand::RemoveItem { .. } => None,
        }
    }
}

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
    Cancelled(OrderCancelled),
    PaymentFailed(OrderPaymentFailed),
    PaymentRejected(OrderPaymentRejected),
    Refunded(OrderRefunded),
    ItemAdded(OrderItemAdded),
    ItemChanged(OrderItemChanged),
    ItemRemoved(OrderItemRemoved),
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
    pub shipping_address: Option<Address>,
    pub billing_address: Option<Address>,
    pub shipping_method: Option<String>,
    pub notes: Option<String>,
    pub payment_method: Option<String>,
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

/// A charge of the order was refunded: its payment, or a rejected charge.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderRefunded {
    pub payment_id: Uuid,
    pub amount: Money,
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
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderDelivered {}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderCancelled {
    /// The status the order had when it was cancelled.
    pub from: OrderStatus,
    pub reason: Option<String>,
}

impl OrderEvent {
    /// The public event type (`order.created`, …), also the routing key.
    pub fn event_type(&self) -> &'static str {
        match self {
            OrderEvent::Created(_) => "order.created",
            OrderEvent::Paid(_) => "order.paid",
            OrderEvent::Shipped(_) => "order.shipped",
            OrderEvent::Delivered(_) => "order.delivered",
            OrderEvent::Cancelled(_) => "order.cancelled",
            OrderEvent::PaymentFailed(_) => "order.payment_failed",
            OrderEvent::PaymentRejected(_) => "order.payment_rejected",
            OrderEvent::Refunded(_) => "order.refunded",
            OrderEvent::ItemAdded(_) => "order.item_added",
            OrderEvent::ItemChanged(_) => "order.item_changed",
            OrderEvent::ItemRemoved(_) => "order.item_removed",
        }
    }

    /// Version of this event's stored payload shape.
    pub fn event_version(&self) -> u16 {
        1
    }

    /// Reads a stored payload back, by its type and version (the upcasting point).
    pub fn decode(
        event_type: &str,
        version: u16,
        payload: serde_json::Value,
    ) -> Result<OrderEvent, DecodeError> {
        let event = match (event_type, version) {
            ("order.created", 1) => OrderEvent::Created(Box::new(serde_json::from_value(payload)?)),
            ("order.paid", 1) => OrderEvent::Paid(serde_json::from_value(payload)?),
            ("order.shipped", 1) => OrderEvent::Shipped(serde_json::from_value(payload)?),
            ("order.delivered", 1) => OrderEvent::Delivered(serde_json::from_value(payload)?),
            ("order.cancelled", 1) => OrderEvent::Cancelled(serde_json::from_value(payload)?),
            ("order.payment_failed", 1) => {
                OrderEvent::PaymentFailed(serde_json::from_value(payload)?)
            }
            ("order.payment_rejected", 1) => {
                OrderEvent::PaymentRejected(serde_json::from_value(payload)?)
            }
            ("order.refunded", 1) => OrderEvent::Refunded(serde_json::from_value(payload)?),
            ("order.item_added", 1) => OrderEvent::ItemAdded(serde_json::from_value(payload)?),
            ("order.item_changed", 1) => OrderEvent::ItemChanged(serde_json::from_value(payload)?),
            ("order.item_removed", 1) => OrderEvent::ItemRemoved(serde_json::from_value(payload)?),
            _ => {
                return Err(DecodeError::Unknown {
                    event_type: event_type.to_owned(),
                    version,
                });
            }
        };
        Ok(event)
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

/// A command that breaks a business rule.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RuleViolation {
    #[error("an order needs at least one item")]
    NoItems,
    #[error("an order may have at most {MAX_ITEMS} items")]
    TooManyItems,
    #[error("item {index} is priced in {found}, the order in {expected}")]
    MixedCurrencies {
        index: usize,
        expected: Currency,
        found: Currency,
    },
    #[error("the order's total is too large")]
    TotalTooLarge,
    #[error("an order cannot go from {from} to {to}")]
    InvalidTransition { from: OrderStatus, to: OrderStatus },
    #[error("the items of a {status} order can no longer change")]
    ItemsFrozen { status: OrderStatus },
    #[error("the order has no item {0}")]
    UnknownItem(Uuid),
}

/// A history that cannot be an order's: corrupt or out-of-order storage.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReplayError {
    #[error("the history is empty")]
    Empty,
    #[error("the history does not start with order.created")]
    NotCreatedFirst,
    #[error("order.created appears twice")]
    CreatedTwice,
    #[error("expected sequence {expected}, found {found}")]
    Gap { expected: u32, found: u32 },
}

impl Order {
    /// Decides whether `command` may place an order; returns `order.created`.
    pub fn place(command: PlaceOrder) -> Result<Vec<OrderEvent>, RuleViolation> {
        if command.items.is_empty() {
            return Err(RuleViolation::NoItems);
        }
        if command.items.len() > MAX_ITEMS {
            return Err(RuleViolation::TooManyItems);
        }
        if let Some((index, item)) = command
            .items
            .iter()
            .enumerate()
            .find(|(_, item)| item.unit_price.currency() != command.currency)
        {
            return Err(RuleViolation::MixedCurrencies {
                index,
                expected: command.currency,
                found: item.unit_price.currency(),
            });
        }
        if let Some(shipping) = command.charges.shipping
            && shipping.currency() != command.currency
        {
            return Err(RuleViolation::TotalTooLarge);
        }
        let totals = Totals::compute(command.currency, &command.items, &command.charges)
            .map_err(|_| RuleViolation::TotalTooLarge)?;
        Ok(vec![OrderEvent::Created(Box::new(OrderCreated {
            order_number: command.number,
            user_id: command.user_id,
            currency: command.currency,
            items: command.items,
            shipping_address: command.shipping_address,
            billing_address: command.billing_address,
            shipping_method: command.shipping_method,
            notes: command.notes,
            payment_method: command.payment_method,
            charges: command.charges,
            totals,
        }))])
    }

    /// Decides what `command` does to this order. Asking for the status the
    /// order already has is a no-op (no events), so retries are harmless.
    pub fn handle(&self, command: OrderCommand) -> Result<Vec<OrderEvent>, RuleViolation> {
        match command {
            OrderCommand::ConfirmPayment { payment_id, amount } => {
                Ok(self.confirm_payment(payment_id, amount))
            }
            OrderCommand::RecordPaymentFailure { payment_id, reason } => {
                // Only a pending order's payment state moves; a late failure of
                // an earlier attempt does not undo a later success.
                Ok(match self.status {
                    OrderStatus::Pending => vec![OrderEvent::PaymentFailed(OrderPaymentFailed {
                        payment_id,
                        reason,
                    })],
                    _ => Vec::new(),
                })
            }
            OrderCommand::AddItem { item } => self.add_item(item),
            OrderCommand::ChangeItem { item_id, quantity } => self.change_item(item_id, quantity),
            OrderCommand::RemoveItem { item_id } => self.remove_item(item_id),
            OrderCommand::Expire => Ok(match self.status {
                OrderStatus::Pending => vec![OrderEvent::Cancelled(OrderCancelled {
                    from: OrderStatus::Pending,
                    reason: Some(EXPIRED_REASON.to_owned()),
                })],
                _ => Vec::new(),
            }),
            // Every refund is recorded once, whichever charge it returns.
            OrderCommand::RecordRefund { payment_id, amount } => {
                Ok(if self.ledger.refunded.contains(&payment_id) {
                    Vec::new()
                } else {
                    vec![OrderEvent::Refunded(OrderRefunded { payment_id, amount })]
                })
            }
            status_change => self.change_status(status_change),
        }
    }

    /// A successful charge pays a pending order if it is exactly the total.
    /// Any other successful charge (the order is no longer pending, or the
    /// amount or currency differs) is rejected, and rejecting it is what
    /// gets it refunded. A charge seen before changes nothing.
    fn confirm_payment(&self, payment_id: Uuid, amount: Money) -> Vec<OrderEvent> {
        if self.ledger.knows(payment_id) {
            return Vec::new();
        }
        if self.status != OrderStatus::Pending {
            return vec![OrderEvent::PaymentRejected(OrderPaymentRejected {
                payment_id,
                amount,
                reason: format!("order_{}", self.status),
            })];
        }
        if amount != self.totals.total {
            return vec![OrderEvent::PaymentRejected(OrderPaymentRejected {
                payment_id,
                amount,
                reason: format!(
                    "amount_mismatch: paid {amount} {}, total is {} {}",
                    amount.currency(),
                    self.totals.total,
                    self.totals.total.currency()
                ),
            })];
        }
        vec![OrderEvent::Paid(OrderPaid {
            amount,
            payment_id: Some(payment_id),
        })]
    }

    /// Items may change only while the order is pending.
    fn editable(&self) -> Result<(), RuleViolation> {
        if self.status == OrderStatus::Pending {
            Ok(())
        } else {
            Err(RuleViolation::ItemsFrozen {
                status: self.status,
            })
        }
    }

    fn totals_with(&self, items: &[LineItem]) -> Result<Totals, RuleViolation> {
        Totals::compute(self.currency, items, &self.charges)
            .map_err(|_| RuleViolation::TotalTooLarge)
    }

    fn add_item(&self, item: LineItem) -> Result<Vec<OrderEvent>, RuleViolation> {
        self.editable()?;
        if self.items.len() >= MAX_ITEMS {
            return Err(RuleViolation::TooManyItems);
        }
        if item.unit_price.currency() != self.currency {
            return Err(RuleViolation::MixedCurrencies {
                index: self.items.len(),
                expected: self.currency,
                found: item.unit_price.currency(),
            });
        }
        let mut items = self.items.clone();
        items.push(item.clone());
        let totals = self.totals_with(&items)?;
        Ok(vec![OrderEvent::ItemAdded(OrderItemAdded { item, totals })])
    }

    fn change_item(
        &self,
        item_id: Uuid,
        quantity: Quantity,
    ) -> Result<Vec<OrderEvent>, RuleViolation> {
        self.editable()?;
        let mut items = self.items.clone();
        let line = items
            .iter_mut()
            .find(|line| line.id == item_id)
            .ok_or(RuleViolation::UnknownItem(item_id))?;
        if line.quantity == quantity {
            return Ok(Vec::new());
        }
        line.quantity = quantity;
        let totals = self.totals_with(&items)?;
        Ok(vec![OrderEvent::ItemChanged(OrderItemChanged {
            item_id,
            quantity,
            totals,
        })])
    }

    fn remove_item(&self, item_id: Uuid) -> Result<Vec<OrderEvent>, RuleViolation> {
        self.editable()?;
        if !self.items.iter().any(|line| line.id == item_id) {
            return Err(RuleViolation::UnknownItem(item_id));
        }
        if self.items.len() == 1 {
            return Err(RuleViolation::NoItems);
        }
        let items: Vec<LineItem> = self
            .items
            .iter()
            .filter(|line| line.id != item_id)
            .cloned()
            .collect();
        let totals = self.totals_with(&items)?;
        Ok(vec![OrderEvent::ItemRemoved(OrderItemRemoved {
            item_id,
            totals,
        })])
    }

    fn change_status(&self, command: OrderCommand) -> Result<Vec<OrderEvent>, RuleViolation> {
        let Some(target) = command.target() else {
            return Ok(Vec::new());
        };
        if target == self.status {
            return Ok(Vec::new());
        }
        if !self.status.can_become(target) {
            return Err(RuleViolation::InvalidTransition {
                from: self.status,
                to: target,
            });
        }
        let event = match command {
            OrderCommand::MarkPaid => OrderEvent::Paid(OrderPaid {
                amount: self.totals.total,
                payment_id: None,
            }),
            OrderCommand::Ship(shipment) => OrderEvent::Shipped(OrderShipped { shipment }),
            OrderCommand::Deliver => OrderEvent::Delivered(OrderDelivered {}),
            OrderCommand::Cancel { reason } => OrderEvent::Cancelled(OrderCancelled {
                from: self.status,
                reason,
            }),
            OrderCommand::ConfirmPayment { .. }
            | OrderCommand::RecordPaymentFailure { .. }
            | OrderCommand::RecordRefund { .. }
            | OrderCommand::Expire
            | OrderCommand::AddItem { .. }
            | OrderCommand::ChangeItem { .. }
            | OrderCommand::RemoveItem { .. } => return Ok(Vec::new()),
        };
        Ok(vec![event])
    }

    /// Rebuilds an order from its full history.
    pub fn replay<'a>(
        history: impl IntoIterator<Item = &'a Recorded>,
    ) -> Result<Order, ReplayError> {
        let mut history = history.into_iter();
        let first = history.next().ok_or(ReplayError::Empty)?;
        let mut order = Order::created(first)?;
        for recorded in history {
            order.apply(recorded)?;
        }
        Ok(order)
    }

    /// The state right after `order.created`.
    pub fn created(recorded: &Recorded) -> Result<Order, ReplayError> {
        let OrderEvent::Created(created) = &recorded.event else {
            return Err(ReplayError::NotCreatedFirst);
        };
        if recorded.sequence != 1 {
            return Err(ReplayError::Gap {
                expected: 1,
                found: recorded.sequence,
            });
        }
        let created = (**created).clone();
        Ok(Order {
            id: recorded.order_id,
            number: created.order_number,
            user_id: created.user_id,
            status: OrderStatus::Pending,
            payment_status: PaymentStatus::Pending,
            currency: created.currency,
            items: created.items,
            shipping_address: created.shipping_address,
            billing_address: created.billing_address,
            shipping_method: created.shipping_method,
            notes: created.notes,
            payment_method: created.payment_method,
            charges: created.charges,
            totals: created.totals,
            cancellation_reason: None,
            shipment: Shipment::default(),
            completed_at: None,
            cancelled_at: None,
            ledger: PaymentLedger::default(),
            created_at: recorded.occurred_at,
            updated_at: recorded.occurred_at,
            version: 1,
        })
    }

    /// Evolves the state by one event that follows the current version.
    pub fn apply(&mut self, recorded: &Recorded) -> Result<(), ReplayError> {
        let expected = self.version + 1;
        if recorded.sequence != expected || recorded.order_id != self.id {
            return Err(ReplayError::Gap {
                expected,
                found: recorded.sequence,
            });
        }
        match &recorded.event {
            OrderEvent::Created(_) => return Err(ReplayError::CreatedTwice),
            OrderEvent::Paid(paid) => {
                self.status = OrderStatus::Paid;
                self.payment_status = PaymentStatus::Paid;
                self.ledger.paid_by = paid.payment_id;
            }
            OrderEvent::Shipped(shipped) => {
                self.status = OrderStatus::Shipped;
                self.shipment = shipped.shipment.clone();
            }
            OrderEvent::Delivered(_) => {
                self.status = OrderStatus::Delivered;
                self.completed_at = Some(recorded.occurred_at);
            }
            OrderEvent::Cancelled(cancelled) => {
                self.status = OrderStatus::Cancelled;
                self.cancelled_at = Some(recorded.occurred_at);
                self.cancellation_reason.clone_from(&cancelled.reason);
            }
            OrderEvent::PaymentFailed(_) => self.payment_status = PaymentStatus::Failed,
            OrderEvent::PaymentRejected(rejected) => {
                self.ledger.rejected.push(rejected.payment_id);
                if self.status == OrderStatus::Pending {
                    self.payment_status = PaymentStatus::Failed;
                }
            }
            OrderEvent::Refunded(refunded) => {
                self.ledger.refunded.push(refunded.payment_id);
                if self.ledger.paid_by == Some(refunded.payment_id) {
                    self.payment_status = PaymentStatus::Refunded;
                }
            }
            OrderEvent::ItemAdded(added) => {
                self.items.push(added.item.clone());
                self.totals = added.totals;
            }
            OrderEvent::ItemChanged(changed) => {
                if let Some(line) = self
                    .items
                    .iter_mut()
                    .find(|line| line.id == changed.item_id)
                {
                    line.quantity = changed.quantity;
                }
                self.totals = changed.totals;
            }
            OrderEvent::ItemRemoved(removed) => {
                self.items.retain(|line| line.id != removed.item_id);
                self.totals = removed.totals;
            }
        }
        self.version = recorded.sequence;
        self.updated_at = recorded.occurred_at;
        Ok(())
    }
}
