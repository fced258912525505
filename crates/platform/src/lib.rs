//! Shared infrastructure of the orders and payments services: configuration,
//! telemetry, the database pool and migrations, JWT authentication, the
//! problem+json error shape, the HTTP plumbing around them, and reliable
//! messaging (RabbitMQ topology, the outbox relay, the consumer loop).
//!
//! Both services are built from these pieces so that they read alike; nothing in
//! here knows about orders or payments.

pub mod actor;
pub mod admission;
pub mod amqp;
pub mod auth;
pub mod card_data;
pub mod cli;
pub mod client;
pub mod clock;
pub mod config;
pub mod consumer;
pub mod db;
pub mod http;
pub mod idempotency;
pub mod inbox;
pub mod jobs;
pub mod json;
pub mod metrics;
pub mod openapi;
pub mod ops;
pub mod privacy;
pub mod problem;
pub mod rate_limit;
pub mod relay;
pub mod resilience;
pub mod retention;
pub mod service;
pub mod telemetry;

pub use problem::{FieldError, Problem};
