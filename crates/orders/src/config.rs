//! Settings of the orders service (see `config/default.yaml` for every key).

use std::path::Path;

use platform::{
    amqp::AmqpConfig,
    auth::AuthConfig,
    config::{HttpConfig, IdempotencyConfig, RelayConfig},
    db::DatabaseConfig,
    jobs::JobsConfig,
    telemetry::LogConfig,
};

use crate::payments_client::PaymentsClientConfig;
use serde::Deserialize;

const DEFAULTS: &str = include_str!("../config/default.yaml");

#[derive(Debug, Clone, Deserialize)]
pub struct Settings {
    pub http: HttpConfig,
    pub database: DatabaseConfig,
    pub auth: AuthConfig,
    pub amqp: AmqpConfig,
    pub relay: RelayConfig,
    pub payments: PaymentsClientConfig,
    pub jobs: JobsConfig,
    pub idempotency: IdempotencyConfig,
    pub rate_limit: crate::api::rate_limit::RateLimitConfig,
    pub history: HistoryConfig,
    pub retention: platform::retention::RetentionConfig,
    pub unpaid: UnpaidConfig,
    pub returns: ReturnsConfig,
    pub user_service: crate::users::UserServiceConfig,
    pub pricing: crate::domain::pricing::PricingConfig,
    #[serde(default)]
    pub promotions: crate::domain::promotions::PromotionsConfig,
    pub catalog: crate::catalog::CatalogConfig,
    pub log: LogConfig,
    pub privacy: platform::privacy::PrivacyConfig,
}

/// Automatic cancellation of orders that are never paid.
#[derive(Debug, Clone, Deserialize)]
pub struct UnpaidConfig {
    /// A pending order older than this is cancelled; 0 turns it off.
    pub cancel_after_seconds: i64,
    /// How often to look for them.
    pub sweep_every_ms: u64,
}

/// The shop's return policy.
#[derive(Debug, Clone, Deserialize)]
pub struct ReturnsConfig {
    /// How many days after delivery a return may be asked for.
    pub window_days: i64,
}

impl Settings {
    /// The built-in defaults alone (no file, no environment): for tests.
    pub fn defaults() -> Result<Settings, figment::Error> {
        platform::config::defaults(DEFAULTS)
    }

    /// Defaults, then `file`, then `ORDERS_*` environment variables.
    pub fn load(file: Option<&Path>) -> Result<Settings, figment::Error> {
        platform::config::load(DEFAULTS, file, "ORDERS_")
    }
}

/// `history:` bounds on one order's event stream.
#[derive(Debug, Clone, serde::Deserialize)]
pub struct HistoryConfig {
    /// Item edits are refused (409) once an order has this many events;
    /// payments, fulfilment and cancellation are always recorded.
    pub max_events_per_order: u32,
    /// Largest page of `GET /api/v1/orders/{id}/events` (default page 100).
    pub max_page: u32,
}
