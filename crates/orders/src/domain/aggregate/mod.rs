//! The order aggregate: a pure state machine.
//!
//! `Order::place` and `Order::handle` decide: they take a command and return the
//! events it causes, or a rule violation. `apply` evolves the state by one
//! recorded event and is the only way state changes, so replaying an order's
//! history always rebuilds exactly the state that was live.

mod items;
mod replay;
mod return_rules;

use time::OffsetDateTime;
use uuid::Uuid;

use super::commands::{OrderCommand, PlaceOrder};
use super::events::*;
use super::money::{Currency, Money};
use super::returns::OrderReturn;
use super::status::{OrderStatus, PaymentStatus};
use super::totals::{Charges, LineItem, Totals};
use super::values::{OrderDetails, OrderId, OrderNumber, UserId};

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
    pub details: OrderDetails,
    pub charges: Charges,
    pub totals: Totals,
    pub cancellation_reason: Option<String>,
    /// Its owner's personal data was erased (`order.personal_data_erased`).
    pub personal_data_erased: bool,
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
            details: command.details,
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
            OrderCommand::ErasePersonalData => Ok(if self.personal_data_erased {
                Vec::new()
            } else {
                vec![OrderEvent::PersonalDataErased(OrderPersonalDataErased {})]
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
}
