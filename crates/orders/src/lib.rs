//! The orders service: event-sourced orders behind a JSON API.
//!
//! - [`domain`]: the pure aggregate (state machine, money, events);
//! - [`service`]: use cases (load, authorize, decide, save);
//! - [`store`]: the event store and projections in schema `orders`;
//! - [`api`]: HTTP handlers, request/response types, problem mapping;
//! - [`messaging`]: the `payment.*` consumer; [`payments_client`]: payments as
//!   orders' jobs call it;
//! - [`users`]: the User Service client (user validation);
//! - [`app`]: configuration and start-up.

pub mod api;
pub mod app;
pub mod catalog;
pub mod config;
pub mod console;
pub mod domain;
pub mod messaging;
pub mod payments_client;
pub mod service;
pub mod store;
pub mod users;
pub mod view;

/// The migrations of schema `orders`, embedded in the binary.
pub const MIGRATIONS: diesel_migrations::EmbeddedMigrations =
    diesel_migrations::embed_migrations!("../../migrations/orders");
