//! The orders domain: money, the order aggregate and its events.
//!
//! Nothing here performs I/O or knows about HTTP, SQL or the broker; the
//! aggregate is a pure function of its history and a command.

pub mod money;
pub mod order;
pub mod pricing;
pub mod promotions;
pub mod values;

#[cfg(test)]
mod tests;

pub use money::{Currency, Money, MoneyError};
pub use order::{
    Charges, LineItem, Order, OrderCommand, OrderEvent, OrderId, OrderStatus, PaymentLedger,
    PaymentStatus, PlaceOrder, Recorded, ReplayError, RuleViolation, Shipment, Totals,
};
pub use promotions::{AppliedCoupon, CouponRefusal, Discount, Promotions, Redemption};
pub use values::{
    Address, AddressInput, OrderNumber, ProductId, Quantity, UserId, VariantId, Violation,
};
