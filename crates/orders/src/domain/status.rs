//! Where an order stands: its lifecycle and its payment. The states are
//! the outside contract's (`contracts::order`), lifecycle edges included:
//! the domain decides with the very names clients and subscribers read.

pub use contracts::order::{OrderStatus, PaymentStatus};
