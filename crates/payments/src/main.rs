//! `payments`: serve the API (with its relay and consumer) or apply migrations.

use anyhow::Context;
use clap::Parser;
use payments::{app::Application, config::Settings};
use platform::cli::{Common, ConfigArg};

#[derive(Parser)]
#[command(version, about = "The payments service")]
struct Cli {
    #[command(flatten)]
    config: ConfigArg,
    #[command(subcommand)]
    command: Option<Common>,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let settings = Settings::load(cli.config.path("payments").as_deref())
        .context("loading the configuration")?;
    let (log, url) = (settings.log.clone(), settings.database.url.clone());
    platform::cli::run(
        cli.command.unwrap_or_default(),
        "payments",
        &log,
        &url,
        payments::MIGRATIONS,
        || async {
            Ok(Application::build(settings)
                .await?
                .run_until_stopped()
                .await?)
        },
    )
    .await
}
