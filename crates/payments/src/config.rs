//! Settings of the payments service (see `config/default.yaml` for every key).

use std::path::Path;

use platform::{
    amqp::AmqpConfig,
    auth::AuthConfig,
    config::{HttpConfig, IdempotencyConfig, RelayConfig},
    db::DatabaseConfig,
    jobs::JobsConfig,
    telemetry::LogConfig,
};

use crate::orders::OrdersClientConfig;
use serde::Deserialize;

const DEFAULTS: &str = include_str!("../config/default.yaml");

#[derive(Debug, Clone, Deserialize)]
pub struct Settings {
    pub http: HttpConfig,
    pub database: DatabaseConfig,
    pub auth: AuthConfig,
    pub amqp: AmqpConfig,
    pub relay: RelayConfig,
    pub provider: ProviderConfig,
    pub idempotency: IdempotencyConfig,
    pub orders: OrdersClientConfig,
    pub jobs: JobsConfig,
    pub reconcile: ReconcileConfig,
    pub authorizations: AuthorizationsConfig,
    pub rate_limit: RateLimitConfig,
    pub retention: platform::retention::RetentionConfig,
    pub log: LogConfig,
}

/// `rate_limit:` per caller and kind of write (`platform::rate_limit`).
#[derive(Debug, Clone, Deserialize)]
pub struct RateLimitConfig {
    pub enabled: bool,
    /// `POST /api/v1/payments`
    pub create: platform::rate_limit::LimitConfig,
    /// `POST /api/v1/payments/{id}/refund`
    pub refund: platform::rate_limit::LimitConfig,
}

impl RateLimitConfig {
    pub fn limits(&self) -> anyhow::Result<platform::rate_limit::RateLimits> {
        platform::rate_limit::RateLimits::new(
            self.enabled,
            &[
                (crate::api::CREATE_LIMIT, self.create),
                (crate::api::REFUND_LIMIT, self.refund),
            ],
        )
    }
}

#[derive(Debug, Clone, Deserialize)]
pub struct ReconcileConfig {
    /// A payment still `processing` this long after it started is presumed
    /// interrupted and settled with what the provider says happened.
    pub stale_after_seconds: i64,
    /// How often to look for such payments.
    pub scan_every_ms: u64,
}

/// Manual capture: how long an authorization may wait for its capture.
#[derive(Debug, Clone, Deserialize)]
pub struct AuthorizationsConfig {
    /// An authorization older than this is voided; 0 turns it off.
    pub expire_after_seconds: i64,
    /// How often to look for them.
    pub scan_every_ms: u64,
}

#[derive(Debug, Clone, Deserialize)]
pub struct ProviderConfig {
    pub latency_ms: u64,
    /// Attempts of a charge in all, when the provider fails transiently.
    pub attempts: u32,
    /// The first wait between two attempts; doubles, jittered.
    pub backoff_ms: u64,
}

impl ProviderConfig {
    pub fn retry(&self) -> platform::resilience::RetryPolicy {
        let first = std::time::Duration::from_millis(self.backoff_ms);
        platform::resilience::RetryPolicy::new(self.attempts.max(1) as usize - 1, first, first * 16)
    }
}

impl Settings {
    /// The built-in defaults alone (no file, no environment): for tests.
    pub fn defaults() -> Result<Settings, figment::Error> {
        platform::config::defaults(DEFAULTS)
    }

    /// Defaults, then `file`, then `PAYMENTS_*` environment variables.
    pub fn load(file: Option<&Path>) -> Result<Settings, figment::Error> {
        platform::config::load(DEFAULTS, file, "PAYMENTS_")
    }
}
