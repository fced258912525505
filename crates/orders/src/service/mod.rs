//! The orders use cases, one per file. Each checks who may do it first, then
//! loads what it needs, lets the aggregate decide, and saves the result in
//! one transaction ([`commit`]). Nothing here speaks HTTP: handlers build
//! the inputs, and `api` turns results and errors into responses.
//!
//! - [`place`]: placing an order (`order.created`), once per Idempotency-Key;
//! - [`change_status`]: fulfilment and cancellation;
//! - [`items`]: adding, changing and removing lines of a pending order;
//! - [`payment_events`]: what payments reported (`payment.*`);
//! - [`expiry`]: cancelling orders left unpaid;
//! - [`read`]: one order, a page of orders, an order's history;
//! - [`keys`]: claiming, releasing and sweeping Idempotency-Keys;
//! - [`stock`]: the catalogue's prices and reservations (a saga step);
//! - [`jobs`]: the work a change decides, done later by the job worker.
//!
//! Writers of the same order are serialized optimistically: a write decided
//! on a stale version fails with a conflict and is decided again on fresh
//! state ([`commit`]), so no update is ever lost.

mod change_status;
mod commit;
mod erasure;
mod expiry;
mod items;
pub mod jobs;
mod keys;
mod metrics;
mod payment_events;
mod place;
mod read;
mod returns;
mod stock;

use std::sync::Arc;

use platform::privacy::KeyRing;

use platform::db::PgPool;
use platform::idempotency::KeyPolicy;
use platform::relay::OutboxSignal;
use tokio::sync::Notify;

use crate::catalog::{Catalog, Shortage};
use crate::domain::pricing::Pricing;
use crate::domain::{CouponRefusal, Currency, Promotions, ReturnPolicy, RuleViolation, Violation};
use crate::store::{OrderNumbers, StoreError};
use crate::users::UserDirectory;

pub use erasure::Erasure;
pub use items::ItemsChanged;
pub use jobs::{CaptureJob, PayJob, RefundJob, RefundReturnJob, ReleaseJob, RestockJob};
pub use payment_events::Consumed;
pub use place::{OrderDraft, PaymentMethod, Placed};
pub use platform::actor::Actor;
pub use read::{OrderView, Page};

/// The subject orders acts under on its own (timers such as the unpaid
/// sweep).
pub const SYSTEM: &str = contracts::order::SERVICE_SUBJECT;
/// The subject payments acts under through its events.
pub const PAYMENTS: &str = contracts::payment::SERVICE_SUBJECT;

#[derive(Debug, thiserror::Error)]
pub enum OrderError {
    #[error("the request is invalid")]
    Invalid(Vec<Violation>),
    #[error("no such order")]
    NotFound,
    #[error("{0}")]
    Forbidden(String),
    #[error(transparent)]
    Rule(RuleViolation),
    #[error("`{0}` is not an order status")]
    UnknownStatus(String),
    #[error("the order is at version {current}, not {expected}")]
    VersionMismatch { expected: u32, current: u32 },
    #[error("the order is being changed by someone else; try again")]
    Conflict,
    #[error("this Idempotency-Key was used for a different request")]
    KeyMismatch,
    #[error("a request with this Idempotency-Key is still being processed")]
    KeyInFlight,
    #[error("the order has {0} events, the most its items may be edited to")]
    HistoryFull(u32),
    #[error("user {0} does not exist")]
    UserNotFound(String),
    #[error(transparent)]
    InvalidCoupon(CouponRefusal),
    /// Products the catalogue does not have: (field, product id).
    #[error("unknown products")]
    ProductsNotFound(Vec<(String, String)>),
    #[error("not enough stock")]
    InsufficientStock(Vec<Shortage>),
    #[error("{0}")]
    CatalogUnavailable(String),
    #[error("{0}")]
    UserServiceUnavailable(String),
    #[error(transparent)]
    Unexpected(#[from] anyhow::Error),
}

impl From<StoreError> for OrderError {
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::Conflict => OrderError::Conflict,
            StoreError::Duplicate => OrderError::Unexpected(anyhow::anyhow!("duplicate event")),
            StoreError::CouponLimit => {
                OrderError::Unexpected(anyhow::anyhow!("a coupon limit outside order placement"))
            }
            StoreError::Unexpected(error) => OrderError::Unexpected(error),
        }
    }
}

/// The orders use cases, used by the HTTP workers (each a clone on its own
/// pool, [`Orders::on_pool`]), the consumer and the job worker.
#[derive(Clone)]
pub struct Orders {
    pool: PgPool,
    numbers: Arc<OrderNumbers>,
    keys: KeyPolicy,
    /// Validates users before their orders are placed, when configured.
    users: Option<Arc<UserDirectory>>,
    /// Tax and shipping rates.
    pricing: Arc<Pricing>,
    /// Coupons.
    promotions: Arc<Promotions>,
    /// Prices and stock, when configured.
    catalog: Option<Arc<Catalog>>,
    /// Wakes this instance's job worker when work is enqueued.
    jobs: Arc<Notify>,
    /// Wakes the outbox relay when events are committed.
    outbox: OutboxSignal,
    /// Item edits stop once an order has this many events (payments,
    /// fulfilment and cancellation are always recorded).
    max_events: u32,
    max_history_page: u32,
    /// How long after delivery a return may be asked for.
    returns: ReturnPolicy,
    /// Seals personal data at rest ([`platform::privacy`]).
    privacy: Arc<KeyRing>,
}

/// What the use cases ask besides the database: the User Service and the
/// catalogue (when configured), the shop's prices and coupons, and the keys
/// that seal personal data.
pub struct Collaborators {
    pub users: Option<UserDirectory>,
    pub catalog: Option<Catalog>,
    pub pricing: Pricing,
    pub promotions: Promotions,
    pub privacy: Arc<KeyRing>,
}

impl Orders {
    pub fn new(pool: PgPool, jobs: Arc<Notify>, keys: KeyPolicy, with: Collaborators) -> Self {
        let Collaborators {
            users,
            catalog,
            pricing,
            promotions,
            privacy,
        } = with;
        Self {
            pool,
            numbers: Arc::default(),
            keys,
            users: users.map(Arc::new),
            pricing: Arc::new(pricing),
            promotions: Arc::new(promotions),
            catalog: catalog.map(Arc::new),
            jobs,
            outbox: OutboxSignal::default(),
            max_events: u32::MAX,
            max_history_page: 500,
            returns: ReturnPolicy::default(),
            privacy,
        }
    }

    /// The same use cases on another pool (an HTTP worker's own); order
    /// numbers, clients and settings stay shared.
    pub fn on_pool(&self, pool: PgPool) -> Self {
        Self {
            pool,
            ..self.clone()
        }
    }

    /// Wakes `outbox`'s relay after every commit that wrote events (without
    /// it, events wait for the relay's safety-net poll).
    pub fn with_outbox(mut self, outbox: OutboxSignal) -> Self {
        self.outbox = outbox;
        self
    }

    /// The shop's return policy.
    pub fn with_returns(mut self, policy: ReturnPolicy) -> Self {
        self.returns = policy;
        self
    }

    /// Caps the events item edits may add to one order, and the page of
    /// its history one request reads.
    pub fn with_history_limits(mut self, max_events: u32, max_page: u32) -> Self {
        self.max_events = max_events.max(2);
        self.max_history_page = max_page.max(1);
        self
    }

    /// The largest page of an order's history.
    pub fn max_history_page(&self) -> u32 {
        self.max_history_page
    }

    /// Whether prices and stock come from a catalogue.
    pub fn has_catalog(&self) -> bool {
        self.catalog.is_some()
    }

    /// The currency of an order that names none and has no catalogue.
    pub fn default_currency(&self) -> Currency {
        self.pricing.default_currency()
    }
}
