//! Persistence of schema `orders`, one module per table (or family of
//! tables), as free async functions over a connection: the caller owns the
//! transaction.
//!
//! - [`events`]: the event store, which is also the outbox; appending an
//!   order's events writes everything the change decides, in one pipelined
//!   round trip;
//! - [`projections`]: the read model (`orders`, `order_items`), written with
//!   the events, read by the API;
//! - [`keys`]: each user's data key (personal data sealed at rest);
//! - [`idempotency`]: `Idempotency-Key`s and the answers stored under them;
//! - [`coupons`]: per-user coupon uses;
//! - the inbox and the jobs table are [`platform::inbox`] and
//!   [`platform::jobs`] over [`INBOX`] and [`JOBS`].
//!
//! Row types are separate from domain types and re-parsed on read.

pub mod coupons;
pub mod events;
pub mod idempotency;
pub mod keys;
mod numbers;
pub mod projections;
pub mod rebuild;
mod rows;
pub mod schema;
pub mod sealed;
pub mod story;

use diesel::result::Error as DieselError;

pub use events::{Also, Cause, HistoryEntry, NewEvent, OUTBOX};
pub use idempotency::{KEYS, StoredResponse};
pub use numbers::OrderNumbers;
pub use projections::{COUNT_CAP, ListFilter, MAX_OFFSET, OrderKey};
pub use sealed::Sealer;

/// The jobs table of schema `orders` (see [`platform::jobs`]).
pub const JOBS: &str = "orders.jobs";

/// The inbox of schema `orders` (see [`platform::inbox`]).
pub const INBOX: &str = "orders.inbox";

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// Another writer appended to the order first; reload and retry.
    #[error("the order was changed concurrently")]
    Conflict,
    /// The consumed event was already recorded in the inbox.
    #[error("the event was consumed before")]
    Duplicate,
    /// The user holds the coupon as often as its limit allows.
    #[error("the coupon's per-user limit is reached")]
    CouponLimit,
    #[error(transparent)]
    Unexpected(#[from] anyhow::Error),
}

impl From<DieselError> for StoreError {
    fn from(error: DieselError) -> Self {
        match platform::db::violated_unique(&error) {
            Some("events_order_sequence_key") => StoreError::Conflict,
            Some("inbox_pkey") => StoreError::Duplicate,
            _ => StoreError::Unexpected(anyhow::Error::new(error).context("database error")),
        }
    }
}
