//! Orders' side of the payment choreography (the requests to payments are
//! jobs, [`crate::service::jobs`]):
//! - [`payment_events`]: consumes `payment.*` and updates orders.
//!
//! Publishing `order.*` is the shared outbox relay over `orders.events` (see
//! [`crate::store::OUTBOX`]).

pub mod payment_events;
