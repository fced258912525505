//! Layered configuration: built-in defaults → an optional YAML file →
//! environment variables (12-factor).
//!
//! Every service embeds its defaults (`config/default.yaml` in its crate), so the
//! binary runs without any file. A file given by `--config` or `<PREFIX>CONFIG`
//! overrides them, and `<PREFIX><SECTION>__<KEY>` environment variables override
//! both: `ORDERS_DATABASE__URL`, `ORDERS_HTTP__PORT`.

use std::path::Path;

use figment::{
    Figment,
    providers::{Env, Format, Yaml},
};
use serde::de::DeserializeOwned;

/// Only the built-in defaults: what tests start from, so that nothing in the
/// environment of whoever runs them changes what they test.
pub fn defaults<T: DeserializeOwned>(defaults: &str) -> Result<T, figment::Error> {
    Figment::from(Yaml::string(defaults)).extract()
}

/// Loads `T` from `defaults` (YAML text), then `file`, then the environment
/// variables starting with `env_prefix` (e.g. `"ORDERS_"`).
pub fn load<T: DeserializeOwned>(
    defaults: &str,
    file: Option<&Path>,
    env_prefix: &str,
) -> Result<T, figment::Error> {
    let mut figment = Figment::from(Yaml::string(defaults));
    if let Some(file) = file {
        figment = figment.merge(Yaml::file_exact(file));
    }
    figment
        .merge(Env::prefixed(env_prefix).split("__").ignore(&["CONFIG"]))
        .extract()
}

/// `http:` of every service.
#[derive(Debug, Clone, serde::Deserialize)]
pub struct HttpConfig {
    pub host: String,
    /// 0 picks a free port (tests).
    pub port: u16,
    pub body_limit_bytes: usize,
    /// 0: one worker per core.
    pub workers: usize,
    /// On SIGTERM: how long in-flight requests, then in-flight messages,
    /// the relay's batch and running jobs, may take to finish.
    #[serde(default = "default_shutdown_timeout")]
    pub shutdown_timeout_seconds: u64,
    /// A request body must arrive within this long once its headers have
    /// (a stalled body is answered `408`, and the connection closed).
    #[serde(default = "default_body_timeout")]
    pub body_timeout_ms: u64,
    /// Answers `500 undocumented_answer` (and logs it) instead of any
    /// status or problem type the OpenAPI document does not list for the
    /// operation. For tests and staging; off in production.
    #[serde(default)]
    pub check_contract: bool,
    /// API requests the service works on at once (all workers together);
    /// one more is answered `503 overloaded` with `Retry-After` at once.
    /// 0: no limit.
    #[serde(default = "default_max_in_flight")]
    pub max_in_flight: usize,
}

fn default_max_in_flight() -> usize {
    256
}

fn default_body_timeout() -> u64 {
    10_000
}

fn default_shutdown_timeout() -> u64 {
    20
}

/// `relay:` the outbox relay of every service.
#[derive(Debug, Clone, serde::Deserialize)]
pub struct RelayConfig {
    pub batch_size: i64,
    /// The longest wait for a notification before looking anyway.
    pub poll_ms: u64,
    /// How long to let more rows gather after a notification.
    pub coalesce_ms: u64,
}

/// `idempotency:` how long `Idempotency-Key`s live.
#[derive(Debug, Clone, serde::Deserialize)]
pub struct IdempotencyConfig {
    /// How long an Idempotency-Key is remembered.
    pub ttl_seconds: i64,
    /// A request still in flight after this long is presumed dead (its
    /// process crashed) and a retry with the same key takes over.
    pub stale_after_seconds: i64,
}

impl IdempotencyConfig {
    pub fn policy(&self) -> crate::idempotency::KeyPolicy {
        crate::idempotency::KeyPolicy {
            ttl: time::Duration::seconds(self.ttl_seconds),
            stale_after: time::Duration::seconds(self.stale_after_seconds),
        }
    }
}
