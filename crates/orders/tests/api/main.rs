//! Integration tests of the orders API: the real service on a random port,
//! each test on its own freshly migrated PostgreSQL database.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod auth;
mod catalog;
mod concurrency;
mod coupons;
mod create;
mod forms;
mod helpers;
mod hostile;
mod idempotency;
mod items;
mod jobs;
mod lifecycle;
mod operations;
mod overload;
mod privacy;
mod rate_limit;
mod read;
mod shutdown;
mod source_documents;
mod users;
mod validation;
