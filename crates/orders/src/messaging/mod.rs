//! Orders' side of the payment choreography:
//! - [`dispatcher`]: sends durable payment requests to payments over HTTP;
//! - [`payment_events`]: consumes `payment.*` and updates orders.
//!
//! Publishing `order.*` is the shared outbox relay over `orders.events` (see
//! [`crate::store::OUTBOX`]).

pub mod dispatcher;
pub mod payment_events;
