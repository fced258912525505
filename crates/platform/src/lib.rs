//! Shared infrastructure of the orders and payments services: configuration,
//! telemetry, the database pool and migrations, JWT authentication, the
//! problem+json error shape and the HTTP plumbing around them.
//!
//! Both services are built from these pieces so that they read alike; nothing in
//! here knows about orders or payments.

pub mod auth;
pub mod config;
pub mod db;
pub mod http;
pub mod json;
pub mod problem;
pub mod telemetry;

pub use problem::{FieldError, Problem};
