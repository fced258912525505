//! The payments service: charges orders through a payment provider, refunds
//! cancelled orders, and publishes `payment.*` events through its outbox.
//!
//! - [`domain`]: the payment state machine and the card-data guard;
//! - [`orders`]: how payments knows an order (it asks orders);
//! - [`provider`]: the provider trait and the simulated provider;
//! - [`service`]: use cases (charge with idempotency, refunds and
//!   reconciliation as jobs, read);
//! - [`store`]: schema `payments`;
//! - [`api`]: HTTP handlers and the OpenAPI document;
//! - [`consumer`]: `order.cancelled` → refund;
//! - [`app`], start-up.

pub mod api;
pub mod app;
pub mod config;
pub mod consumer;
pub mod domain;
pub mod ops;
pub mod orders;
pub mod provider;
pub mod service;
pub mod store;

/// The migrations of schema `payments`, embedded in the binary.
pub const MIGRATIONS: diesel_migrations::EmbeddedMigrations =
    diesel_migrations::embed_migrations!("../../migrations/payments");
