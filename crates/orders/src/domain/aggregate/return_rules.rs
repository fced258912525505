//! Deciding returns: what may come back, and what it refunds.

use time::OffsetDateTime;
use uuid::Uuid;

use super::super::events::*;
use super::super::money::Money;
use super::super::returns::{self, ReturnLine, ReturnPolicy, ReturnStatus};
use super::super::status::OrderStatus;
use super::*;

impl Order {
    /// Units of each line returned (or on their way back) so far.
    pub(super) fn returned_units(&self, item_id: Uuid) -> u32 {
        self.returns
            .iter()
            .flat_map(|r| &r.lines)
            .filter(|line| line.item_id == item_id)
            .map(|line| line.quantity.get())
            .sum()
    }

    /// The owner sends lines of a delivered order back, within the window,
    /// never more units of a line than were ordered.
    pub(super) fn request_return(
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
    pub(super) fn gross(&self, lines: &[ReturnLine]) -> i64 {
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
    pub(super) fn receive_return(&self, return_id: Uuid) -> Result<Vec<OrderEvent>, RuleViolation> {
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
}
