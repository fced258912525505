//! The orders domain: money, the order aggregate and its events.
//!
//! Nothing here performs I/O or knows about HTTP, SQL or the broker; the
//! aggregate is a pure function of its history and a command.

pub mod aggregate;
pub mod commands;
pub mod events;
pub mod money;
pub mod pricing;
pub mod promotions;
pub mod returns;
pub mod status;
pub mod totals;
pub mod values;

#[cfg(test)]
mod tests;

pub use aggregate::{EXPIRED_REASON, MAX_ITEMS, Order, PaymentLedger, ReplayError, RuleViolation};
pub use commands::{OrderCommand, PlaceOrder};
pub use events::{OrderEvent, OrderEventType, Recorded, Shipment};
pub use money::{Currency, Money, MoneyError};
pub use promotions::{AppliedCoupon, CouponRefusal, Discount, Promotions, Redemption};
pub use returns::{OrderReturn, ReturnLine, ReturnPolicy, ReturnStatus};
pub use status::{OrderStatus, PaymentStatus};
pub use totals::{Charges, LineItem, Totals};
pub use values::{
    Address, AddressInput, OrderDetails, OrderId, OrderNumber, ProductId, Quantity, UserId,
    VariantId, Violation,
};
