//! `payments`: serve the API (with its relay and consumer) or apply migrations.

use std::path::PathBuf;

use anyhow::Context;
use clap::{Parser, Subcommand};
use payments::{app::Application, config::Settings};
use platform::telemetry;

#[derive(Parser)]
#[command(version, about = "The payments service")]
struct Cli {
    /// YAML file overriding the built-in defaults (PAYMENTS_* variables override both).
    #[arg(long, env = "PAYMENTS_CONFIG", global = true)]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the HTTP API, relay the outbox, consume order events (the default).
    Serve,
    /// Apply pending database migrations and exit.
    Migrate,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let settings = Settings::load(cli.config.as_deref()).context("loading the configuration")?;
    match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => {
            telemetry::init("payments", &settings.log, std::io::stdout);
            let served = Application::build(settings)
                .await?
                .run_until_stopped()
                .await;
            telemetry::shutdown();
            served?;
        }
        Command::Migrate => {
            telemetry::init("payments", &settings.log, std::io::stderr);
            let applied = platform::db::run_migrations(
                &settings.database.url,
                "payments",
                payments::MIGRATIONS,
            )
            .await?;
            tracing::info!(migrations.applied = ?applied, "migrations applied");
        }
    }
    Ok(())
}
