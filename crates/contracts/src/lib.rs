//! The language of the events the services exchange, shared by both.
//!
//! Every event is a CloudEvents 1.0 event in structured mode. This crate holds
//! the event types, the data each carries (documented as JSON Schema through
//! utoipa), and the one function that builds and the one that parses the
//! envelope, so a producer and a consumer can never disagree on it.

pub mod amqp;
pub mod cloud;
pub mod money;
pub mod ops;
pub mod order;
pub mod payment;
pub mod problem;
pub mod schema;

pub use cloud::{EnvelopeError, EventMeta};
