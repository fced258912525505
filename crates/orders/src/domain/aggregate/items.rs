//! Deciding item edits of a pending order.

use uuid::Uuid;

use super::super::events::*;
use super::super::status::OrderStatus;
use super::super::totals::{LineItem, Totals};
use super::super::values::Quantity;
use super::*;

impl Order {
    /// Items may change only while the order is pending.
    pub(super) fn editable(&self) -> Result<(), RuleViolation> {
        if self.status == OrderStatus::Pending {
            Ok(())
        } else {
            Err(RuleViolation::ItemsFrozen {
                status: self.status,
            })
        }
    }

    pub(super) fn totals_with(&self, items: &[LineItem]) -> Result<Totals, RuleViolation> {
        Totals::compute(self.currency, items, &self.charges)
            .map_err(|_| RuleViolation::TotalTooLarge)
    }

    pub(super) fn add_item(&self, item: LineItem) -> Result<Vec<OrderEvent>, RuleViolation> {
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

    pub(super) fn change_item(
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

    pub(super) fn remove_item(&self, item_id: Uuid) -> Result<Vec<OrderEvent>, RuleViolation> {
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
}
