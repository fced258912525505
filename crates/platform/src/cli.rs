//! The command line both services share: `--config FILE` (or
//! `<SERVICE>_CONFIG`), `serve` (the default) and `migrate`; a service adds
//! its own commands beside them.

use std::future::Future;
use std::path::PathBuf;

use diesel_migrations::EmbeddedMigrations;
use secrecy::SecretString;

use crate::telemetry::{self, LogConfig};

/// `--config FILE`: YAML overriding the built-in defaults (the service's
/// `<SERVICE>_*` variables override both). Without it, `<SERVICE>_CONFIG`.
#[derive(Debug, clap::Args)]
pub struct ConfigArg {
    /// YAML file overriding the built-in defaults (`<SERVICE>_CONFIG` when
    /// absent; `<SERVICE>_*` variables override both).
    #[arg(long, global = true)]
    config: Option<PathBuf>,
}

impl ConfigArg {
    /// The file to read for `service`, if any.
    pub fn path(&self, service: &str) -> Option<PathBuf> {
        self.config.clone().or_else(|| {
            std::env::var_os(format!("{}_CONFIG", service.to_ascii_uppercase())).map(PathBuf::from)
        })
    }
}

/// The commands every service has.
#[derive(Debug, Clone, Copy, Default, clap::Subcommand)]
pub enum Common {
    /// Serve the HTTP API, relay the outbox, consume events, run jobs (the
    /// default).
    #[default]
    Serve,
    /// Apply pending database migrations and exit.
    Migrate,
}

/// Runs `command` for `service`: `serve` runs what `serve` returns with
/// logs on stdout (and flushes telemetry after); `migrate` applies
/// `migrations` to `database_url` with logs on stderr.
pub async fn run<S, F>(
    command: Common,
    service: &'static str,
    log: &LogConfig,
    database_url: &SecretString,
    migrations: EmbeddedMigrations,
    serve: S,
) -> anyhow::Result<()>
where
    S: FnOnce() -> F,
    F: Future<Output = anyhow::Result<()>>,
{
    match command {
        Common::Serve => {
            telemetry::init(service, log, std::io::stdout);
            let result = serve().await;
            telemetry::shutdown();
            result
        }
        Common::Migrate => {
            telemetry::init(service, log, std::io::stderr);
            let applied = crate::db::run_migrations(database_url, service, migrations).await?;
            tracing::info!(migrations.applied = ?applied, "migrations applied");
            Ok(())
        }
    }
}
