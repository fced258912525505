//! The order aggregate: a pure state machine.
//!
//! `Order::place` and `Order::handle` decide: they take a command and return the
//! events it causes, or a rule violation. `apply` evolves the state by one
//! recorded event and is the only way state changes, so replaying an order's
//! history always rebuilds exactly the state that was live.

use time::OffsetDateTime;
use uuid::Uuid;

use super::commands::{OrderCommand, PlaceOrder};
use super::events::*;
use super::money::{Currency, Money};
use super::returns::{self, OrderReturn, ReturnLine, ReturnPolicy, ReturnStatus};
use super::status::{OrderStatus, PaymentStatus};
use super::totals::{Charges, LineItem, Totals};
use super::values::{Address, OrderId, OrderNumber, Quantity, UserId};

/// Most line items an order may have.
pub const MAX_ITEMS: usize = 100;

/// The cancellation reason of an order that stayed unpaid too long.
pub const EXPIRED_REASON: &str = "payment_timeout";

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
    /// Returns of the delivered order, oldest first.
    pub returns: Vec<OrderReturn>,
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
    /// Charges refunded (in full or in part).
    pub refunded: Vec<Uuid>,
    /// Refunds recorded, by refund id (or, for a refund without one, its
    /// payment's id).
    pub refunds: Vec<Uuid>,
    /// What the paying payment took.
    pub paid: Option<Money>,
    /// What was given back of it, in minor units.
    pub paid_refunded_minor: i64,
    /// Manual capture: the shipment waiting for its capture, once asked.
    pub capture_pending: Option<Shipment>,
}

impl PaymentLedger {
    fn knows(&self, payment_id: Uuid) -> bool {
        self.paid_by == Some(payment_id)
            || self.rejected.contains(&payment_id)
            || self.refunded.contains(&payment_id)
    }
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
    /// Everything paid for the order was given back: it is not shipped.
    #[error("the order's payment was refunded in full; it cannot be shipped")]
    PaymentRefunded,
    /// Only a delivered order can be returned.
    #[error("a {status} order cannot be returned; only a delivered one")]
    NotReturnable { status: OrderStatus },
    #[error("the return window closed {closed_at}")]
    ReturnWindowClosed { closed_at: OffsetDateTime },
    /// More units of a line than were ordered (less those already returned).
    #[error("line {item_id}: at most {returnable} more unit(s) can be returned")]
    ReturnExceedsQuantity { item_id: Uuid, returnable: u32 },
    #[error("{0}")]
    InvalidReturn(String),
    #[error("the order has no return {0}")]
    UnknownReturn(Uuid),
    /// Shipped (or being shipped) with another carrier or tracking number.
    #[error("the order is already shipped with another carrier or tracking number")]
    ShipmentRecorded,
    /// The authorization was released: nothing is held for the order.
    #[error("the order's payment authorization was voided; it cannot be shipped")]
    PaymentVoided,
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
            OrderCommand::MarkPaid => self.transition(OrderStatus::Paid, || {
                OrderEvent::Paid(OrderPaid {
                    amount: self.totals.total,
                    payment_id: None,
                    authorized: false,
                })
            }),
            OrderCommand::Ship(shipment) => {
                // Shipping again says nothing new, or is refused: a carrier
                // or tracking number other than the one recorded is never
                // silently dropped.
                let recorded = match (&self.ledger.capture_pending, self.status) {
                    (Some(waiting), OrderStatus::Paid) => Some(waiting),
                    (_, OrderStatus::Shipped) => Some(&self.shipment),
                    _ => None,
                };
                if let Some(recorded) = recorded
                    && shipment != Shipment::default()
                    && &shipment != recorded
                {
                    return Err(RuleViolation::ShipmentRecorded);
                }
                if self.status == OrderStatus::Paid
                    && self.payment_status == PaymentStatus::Refunded
                {
                    return Err(RuleViolation::PaymentRefunded);
                }
                if self.status == OrderStatus::Paid && self.payment_status == PaymentStatus::Voided
                {
                    return Err(RuleViolation::PaymentVoided);
                }
                // Manual capture: the money is taken first; the order ships
                // when the capture succeeds (asked once).
                if let (OrderStatus::Paid, PaymentStatus::Authorized, Some(payment_id)) =
                    (self.status, self.payment_status, self.ledger.paid_by)
                {
                    return Ok(if self.ledger.capture_pending.is_some() {
                        Vec::new()
                    } else {
                        vec![OrderEvent::CaptureRequested(OrderCaptureRequested {
                            payment_id,
                            amount: self.ledger.paid.unwrap_or(self.totals.total),
                            shipment,
                        })]
                    });
                }
                self.transition(OrderStatus::Shipped, || {
                    OrderEvent::Shipped(OrderShipped {
                        shipment,
                        captured: None,
                    })
                })
            }
            OrderCommand::Deliver => self.transition(OrderStatus::Delivered, || {
                OrderEvent::Delivered(OrderDelivered {})
            }),
            OrderCommand::Cancel { reason } => self.transition(OrderStatus::Cancelled, || {
                OrderEvent::Cancelled(OrderCancelled {
                    from: self.status,
                    reason,
                })
            }),
            OrderCommand::ConfirmPayment { payment_id, amount } => {
                Ok(self.confirm_payment(payment_id, amount, false))
            }
            OrderCommand::ConfirmAuthorization { payment_id, amount } => {
                Ok(self.confirm_payment(payment_id, amount, true))
            }
            OrderCommand::RecordCapture { payment_id, amount } => {
                Ok(self.record_capture(payment_id, amount))
            }
            OrderCommand::RecordCaptureFailure { payment_id, reason } => Ok(
                if self.ledger.capture_pending.is_some()
                    && self.ledger.paid_by == Some(payment_id)
                    && self.status == OrderStatus::Paid
                {
                    vec![OrderEvent::CaptureFailed(OrderCaptureFailed {
                        payment_id,
                        reason,
                    })]
                } else {
                    Vec::new()
                },
            ),
            // The money is no longer secured: a paid order waiting for its
            // capture is cancelled (the authorization expired, or an
            // operator voided it).
            OrderCommand::RecordVoid { payment_id, reason } => Ok(
                if self.ledger.paid_by != Some(payment_id)
                    || self.payment_status != PaymentStatus::Authorized
                {
                    Vec::new()
                } else if self.status == OrderStatus::Paid {
                    vec![
                        OrderEvent::PaymentVoided(OrderPaymentVoided { payment_id }),
                        OrderEvent::Cancelled(OrderCancelled {
                            from: OrderStatus::Paid,
                            reason: Some(reason.unwrap_or_else(|| "authorization_voided".into())),
                        }),
                    ]
                } else {
                    vec![OrderEvent::PaymentVoided(OrderPaymentVoided { payment_id })]
                },
            ),
            // Only a pending order's payment state moves; a late failure of
            // an earlier attempt does not undo a later success.
            OrderCommand::RecordPaymentFailure { payment_id, reason } => Ok(match self.status {
                OrderStatus::Pending => vec![OrderEvent::PaymentFailed(OrderPaymentFailed {
                    payment_id,
                    reason,
                })],
                _ => Vec::new(),
            }),
            // Every refund is recorded once, whichever charge it returns.
            OrderCommand::RecordRefund {
                payment_id,
                refund_id,
                amount,
            } => Ok(
                if self
                    .ledger
                    .refunds
                    .contains(&refund_id.unwrap_or(payment_id))
                {
                    Vec::new()
                } else {
                    vec![OrderEvent::Refunded(OrderRefunded {
                        payment_id,
                        amount,
                        refund_id,
                    })]
                },
            ),
            OrderCommand::Expire => Ok(match self.status {
                OrderStatus::Pending => vec![OrderEvent::Cancelled(OrderCancelled {
                    from: OrderStatus::Pending,
                    reason: Some(EXPIRED_REASON.to_owned()),
                })],
                _ => Vec::new(),
            }),
            OrderCommand::RequestReturn {
                return_id,
                lines,
                reason,
                now,
                policy,
            } => self.request_return(return_id, lines, reason, now, policy),
            OrderCommand::ReceiveReturn { return_id } => self.receive_return(return_id),
            OrderCommand::AddItem { item } => self.add_item(item),
            OrderCommand::ChangeItem { item_id, quantity } => self.change_item(item_id, quantity),
            OrderCommand::RemoveItem { item_id } => self.remove_item(item_id),
        }
    }

    /// A move along the lifecycle to `target`: nothing if the order is there
    /// already, refused if the lifecycle has no such edge.
    fn transition(
        &self,
        target: OrderStatus,
        event: impl FnOnce() -> OrderEvent,
    ) -> Result<Vec<OrderEvent>, RuleViolation> {
        if target == self.status {
            return Ok(Vec::new());
        }
        if !self.status.can_become(target) {
            return Err(RuleViolation::InvalidTransition {
                from: self.status,
                to: target,
            });
        }
        Ok(vec![event()])
    }

    /// A successful charge pays a pending order if it is exactly the total.
    /// Any other successful charge (the order is no longer pending, or the
    /// amount or currency differs) is rejected, and rejecting it is what
    /// gets it refunded. A charge seen before changes nothing.
    fn confirm_payment(
        &self,
        payment_id: Uuid,
        amount: Money,
        authorized: bool,
    ) -> Vec<OrderEvent> {
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
            authorized,
        })]
    }

    /// Manual capture: the paying authorization was captured. With a
    /// shipment waiting for it, the order ships now; otherwise (an operator
    /// captured it) the capture is recorded. Anything else (a redelivery, a
    /// capture of another payment) changes nothing.
    fn record_capture(&self, payment_id: Uuid, amount: Money) -> Vec<OrderEvent> {
        if self.ledger.paid_by != Some(payment_id)
            || self.payment_status != PaymentStatus::Authorized
        {
            return Vec::new();
        }
        match (&self.ledger.capture_pending, self.status) {
            (Some(shipment), OrderStatus::Paid) => vec![OrderEvent::Shipped(OrderShipped {
                shipment: shipment.clone(),
                captured: Some(amount),
            })],
            _ => vec![OrderEvent::PaymentCaptured(OrderPaymentCaptured {
                payment_id,
                amount,
            })],
        }
    }

    /// Units of each line returned (or on their way back) so far.
    fn returned_units(&self, item_id: Uuid) -> u32 {
        self.returns
            .iter()
            .flat_map(|r| &r.lines)
            .filter(|line| line.item_id == item_id)
            .map(|line| line.quantity.get())
            .sum()
    }

    /// The owner sends lines of a delivered order back, within the window,
    /// never more units of a line than were ordered.
    fn request_return(
        &self,
        return_id: Uuid,
        lines: Vec<ReturnLine>,
        reason: String,
        now: OffsetDateTime,
        policy: ReturnPolicy,
    ) -> Result<Vec<OrderEvent>, RuleViolation> {
        if self.returns.iter().any(|r| r.id == return_id) {
            return Ok(Vec::new());
        }
        if self.status != OrderStatus::Delivered {
            return Err(RuleViolation::NotReturnable {
                status: self.status,
            });
        }
        let delivered = self.completed_at.unwrap_or(self.updated_at);
        if now > delivered + policy.window {
            return Err(RuleViolation::ReturnWindowClosed {
                closed_at: delivered + policy.window,
            });
        }
        if lines.is_empty() {
            return Err(RuleViolation::InvalidReturn(
                "a return needs at least one line".into(),
            ));
        }
        for item in &self.items {
            let asked: u32 = lines
                .iter()
                .filter(|line| line.item_id == item.id)
                .map(|line| line.quantity.get())
                .sum();
            let returnable =
                item.quantity.get() - self.returned_units(item.id).min(item.quantity.get());
            if asked > returnable {
                return Err(RuleViolation::ReturnExceedsQuantity {
                    item_id: item.id,
                    returnable,
                });
            }
        }
        if let Some(unknown) = lines
            .iter()
            .find(|line| !self.items.iter().any(|item| item.id == line.item_id))
        {
            return Err(RuleViolation::InvalidReturn(format!(
                "the order has no line {}",
                unknown.item_id
            )));
        }
        Ok(vec![OrderEvent::ReturnRequested(OrderReturnRequested {
            return_id,
            lines,
            reason,
        })])
    }

    /// The gross price (minor units) of returned lines.
    fn gross(&self, lines: &[ReturnLine]) -> i64 {
        lines
            .iter()
            .filter_map(|line| {
                let item = self.items.iter().find(|item| item.id == line.item_id)?;
                Some(item.unit_price.minor() * i64::from(line.quantity.get()))
            })
            .sum()
    }

    /// A return arrived: its lines' cumulative share of what was paid for
    /// the goods (never shipping) is refunded. Received again: nothing.
    fn receive_return(&self, return_id: Uuid) -> Result<Vec<OrderEvent>, RuleViolation> {
        let found = self
            .returns
            .iter()
            .find(|r| r.id == return_id)
            .ok_or(RuleViolation::UnknownReturn(return_id))?;
        if found.status == ReturnStatus::Received {
            return Ok(Vec::new());
        }
        let before: i64 = self
            .returns
            .iter()
            .filter(|r| r.status == ReturnStatus::Received)
            .map(|r| self.gross(&r.lines))
            .sum();
        let this = self.gross(&found.lines);
        let mut goods = self.totals.total.minor() - self.totals.shipping.minor();
        if let Some(paid) = self.ledger.paid {
            goods = goods.min(paid.minor());
        }
        let goods = goods.max(0);
        let subtotal = self.totals.subtotal.minor();
        let minor = returns::share(goods, before + this, subtotal)
            - returns::share(goods, before, subtotal);
        let refund =
            Money::from_minor(minor, self.currency).map_err(|_| RuleViolation::TotalTooLarge)?;
        Ok(vec![OrderEvent::ReturnReceived(OrderReturnReceived {
            return_id,
            refund,
            payment_id: self.ledger.paid_by,
        })])
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
            returns: Vec::new(),
            created_at: recorded.occurred_at,
            updated_at: recorded.occurred_at,
            version: 1,
        })
    }

    /// A refund of one of the order's charges. Of the paying charge, it
    /// makes the order `partially_refunded` or, once everything it took is
    /// back, `refunded`; a cancelled order's only charge given back (one
    /// that completed after the cancellation) makes it `refunded`.
    fn apply_refund(&mut self, refunded: &OrderRefunded) {
        let ledger = &mut self.ledger;
        ledger
            .refunds
            .push(refunded.refund_id.unwrap_or(refunded.payment_id));
        if !ledger.refunded.contains(&refunded.payment_id) {
            ledger.refunded.push(refunded.payment_id);
        }
        if ledger.paid_by == Some(refunded.payment_id) {
            ledger.paid_refunded_minor += refunded.amount.minor();
            let paid = ledger.paid.map_or(0, |paid| paid.minor());
            // Refunds recorded before they had ids refunded in full.
            self.payment_status =
                if refunded.refund_id.is_none() || ledger.paid_refunded_minor >= paid {
                    PaymentStatus::Refunded
                } else {
                    PaymentStatus::PartiallyRefunded
                };
        } else if self.status == OrderStatus::Cancelled
            && matches!(
                self.payment_status,
                PaymentStatus::Pending | PaymentStatus::Failed
            )
        {
            self.payment_status = PaymentStatus::Refunded;
        }
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
                self.payment_status = if paid.authorized {
                    PaymentStatus::Authorized
                } else {
                    PaymentStatus::Paid
                };
                self.ledger.paid_by = paid.payment_id;
                self.ledger.paid = Some(paid.amount);
            }
            OrderEvent::Shipped(shipped) => {
                self.status = OrderStatus::Shipped;
                self.shipment = shipped.shipment.clone();
                if let Some(captured) = shipped.captured {
                    self.payment_status = PaymentStatus::Paid;
                    self.ledger.paid = Some(captured);
                    self.ledger.capture_pending = None;
                }
            }
            OrderEvent::CaptureRequested(requested) => {
                self.ledger.capture_pending = Some(requested.shipment.clone());
            }
            OrderEvent::CaptureFailed(_) => self.ledger.capture_pending = None,
            OrderEvent::PaymentCaptured(captured) => {
                self.payment_status = PaymentStatus::Paid;
                self.ledger.paid = Some(captured.amount);
            }
            OrderEvent::ReturnRequested(requested) => self.returns.push(OrderReturn {
                id: requested.return_id,
                lines: requested.lines.clone(),
                reason: requested.reason.clone(),
                status: ReturnStatus::Requested,
                refund: None,
                requested_at: recorded.occurred_at,
            }),
            OrderEvent::ReturnReceived(received) => {
                if let Some(found) = self.returns.iter_mut().find(|r| r.id == received.return_id) {
                    found.status = ReturnStatus::Received;
                    found.refund = Some(received.refund);
                }
            }
            OrderEvent::PaymentVoided(_) => {
                self.payment_status = PaymentStatus::Voided;
                self.ledger.capture_pending = None;
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
            OrderEvent::Refunded(refunded) => self.apply_refund(refunded),
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
