//! Evolving: the state an order's recorded events build, one at a time.

use super::super::events::*;
use super::super::returns::{OrderReturn, ReturnStatus};
use super::super::status::{OrderStatus, PaymentStatus};
use super::*;

impl Order {
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
            details: created.details,
            charges: created.charges,
            totals: created.totals,
            cancellation_reason: None,
            personal_data_erased: false,
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
    pub(super) fn apply_refund(&mut self, refunded: &OrderRefunded) {
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
            OrderEvent::PersonalDataErased(_) => {
                self.personal_data_erased = true;
                self.details.shipping_address = None;
                self.details.billing_address = None;
                self.details.notes = None;
                self.cancellation_reason = None;
                for r in &mut self.returns {
                    r.reason.clear();
                }
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
