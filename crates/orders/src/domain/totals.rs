//! What an order costs: its lines, the charges fixed at placement, and the
//! totals computed from them.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::money::{Currency, Money, MoneyError};
use super::promotions::AppliedCoupon;
use super::values::{ProductId, Quantity, VariantId};

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
