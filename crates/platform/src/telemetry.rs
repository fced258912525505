//! One telemetry set-up for both services: `tracing` with a JSON (production) or
//! human (local) formatter, filtered by `RUST_LOG` or the configured level.
//!
//! The writer is a parameter so tests can keep quiet unless `TEST_LOG` is set.

use serde::Deserialize;
use tracing_subscriber::{
    EnvFilter, fmt::MakeWriter, layer::SubscriberExt, util::SubscriberInitExt,
};

/// `log:` section of a service's configuration.
#[derive(Debug, Clone, Deserialize)]
pub struct LogConfig {
    /// `json` (one object per line) or `pretty` (for humans).
    pub format: LogFormat,
    /// Default filter when `RUST_LOG` is unset, e.g. `info` or `orders=debug,info`.
    pub level: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Json,
    Pretty,
}

/// Installs the global subscriber. Safe to call more than once (later calls are
/// no-ops), which integration tests rely on.
pub fn init<W>(service: &'static str, config: &LogConfig, writer: W)
where
    W: for<'a> MakeWriter<'a> + Send + Sync + 'static,
{
    let filter = EnvFilter::try_from_default_env()
        .or_else(|_| EnvFilter::try_new(&config.level))
        .unwrap_or_else(|_| EnvFilter::new("info"));
    let registry = tracing_subscriber::registry().with(filter);
    let result = match config.format {
        LogFormat::Json => registry
            .with(
                tracing_subscriber::fmt::layer()
                    .json()
                    .flatten_event(true)
                    .with_current_span(true)
                    .with_span_list(false)
                    .with_writer(writer),
            )
            .try_init(),
        LogFormat::Pretty => registry
            .with(
                tracing_subscriber::fmt::layer()
                    .compact()
                    .with_writer(writer),
            )
            .try_init(),
    };
    if result.is_ok() {
        tracing::debug!(service, "telemetry initialised");
    }
}
