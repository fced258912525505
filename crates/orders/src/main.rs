//! `orders`: serve the API, apply migrations, or mint a development token.

use anyhow::Context;
use clap::{Parser, Subcommand};
use orders::{app::Application, config::Settings};
use platform::cli::{Common, ConfigArg};

#[derive(Parser)]
#[command(version, about = "The orders service")]
struct Cli {
    #[command(flatten)]
    config: ConfigArg,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    #[command(flatten)]
    Common(Common),
    /// Print a development token signed with the configured HS256 secret.
    Token {
        /// The user id (`sub`).
        subject: String,
        /// Space-separated scopes.
        #[arg(
            long,
            default_value = "orders.read orders.write payments.read payments.write"
        )]
        scopes: String,
        /// Lifetime in seconds.
        #[arg(long, default_value_t = 3600)]
        ttl: i64,
        /// Audiences; defaults to both services.
        #[arg(long, default_values_t = ["orders".to_owned(), "payments".to_owned()])]
        audience: Vec<String>,
    },
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let settings = Settings::load(cli.config.path("orders").as_deref())
        .context("loading the configuration")?;
    match cli.command.unwrap_or(Command::Common(Common::Serve)) {
        Command::Common(command) => {
            let (log, url) = (settings.log.clone(), settings.database.url.clone());
            platform::cli::run(
                command,
                "orders",
                &log,
                &url,
                orders::MIGRATIONS,
                || async {
                    Ok(Application::build(settings)
                        .await?
                        .run_until_stopped()
                        .await?)
                },
            )
            .await?;
        }
        Command::Token {
            subject,
            scopes,
            ttl,
            audience,
        } => {
            let secret = settings.auth.may_mint()?.clone();
            anyhow::ensure!(
                (1..=i64::try_from(settings.auth.max_token_lifetime_seconds).unwrap_or(i64::MAX))
                    .contains(&ttl),
                "--ttl must be 1 to {} seconds (auth.max_token_lifetime_seconds)",
                settings.auth.max_token_lifetime_seconds
            );
            let scopes: Vec<&str> = scopes.split_whitespace().collect();
            let token = platform::auth::mint_hs256(
                &secret,
                &settings.auth.issuer,
                &audience,
                &subject,
                &scopes,
                ttl,
            )?;
            #[allow(clippy::print_stdout)]
            {
                println!("{token}");
            }
        }
    }
    Ok(())
}
