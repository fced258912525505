//! Test harness shared by the services' integration tests.
//!
//! - [`TestDatabase`]: a fresh, migrated PostgreSQL database per test, dropped
//!   when the test ends, so tests run in parallel and re-run on a dirty machine;
//! - [`tokens`]: JWTs signed with the test secret or the RS256 fixture key, and
//!   every kind of bad token;
//! - [`broker`]: per-test RabbitMQ names, a recording subscriber, clean-up;
//! - [`proxy`]: a TCP proxy that can cut a service off the broker;
//! - [`hostile`]: the hostile-input suite every endpoint must refuse.

pub mod broker;
pub mod hostile;
pub mod http;
pub mod proxy;
pub mod tokens;

use anyhow::Context;
use diesel_async::{AsyncConnection, AsyncPgConnection, SimpleAsyncConnection};
use diesel_migrations::EmbeddedMigrations;
use secrecy::SecretString;
use uuid::Uuid;

/// Where the test databases live: `TEST_DATABASE_URL` (a server URL whose
/// database is used for administration), by default the local PostgreSQL.
pub fn admin_url() -> String {
    std::env::var("TEST_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_owned())
}

fn url_for(database: &str) -> String {
    let admin = admin_url();
    let base = admin
        .rsplit_once('/')
        .map_or(admin.as_str(), |(base, _)| base);
    format!("{base}/{database}")
}

/// A database created for one test, migrated, and dropped on drop.
#[derive(Debug)]
pub struct TestDatabase {
    pub name: String,
    pub url: String,
}

impl TestDatabase {
    /// Creates `test_<service>_<random>` and applies `migrations` to `schema`.
    pub async fn create(
        service: &str,
        schema: &'static str,
        migrations: EmbeddedMigrations,
    ) -> anyhow::Result<TestDatabase> {
        let name = format!("test_{service}_{}", Uuid::new_v4().simple());
        let mut admin = AsyncPgConnection::establish(&admin_url())
            .await
            .context("connecting to the test PostgreSQL (set TEST_DATABASE_URL?)")?;
        admin
            .batch_execute(&format!("CREATE DATABASE \"{name}\""))
            .await
            .with_context(|| format!("creating {name}"))?;
        let database = TestDatabase {
            url: url_for(&name),
            name,
        };
        platform::db::run_migrations(
            &SecretString::from(database.url.clone()),
            schema,
            migrations,
        )
        .await?;
        Ok(database)
    }

    /// A direct connection, for assertions on what was stored.
    pub async fn connect(&self) -> anyhow::Result<AsyncPgConnection> {
        platform::db::connect(&self.url).await
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        let name = self.name.clone();
        // Drop runs inside the test's runtime; use a thread with its own.
        let dropped = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .ok()?;
            runtime.block_on(async {
                let mut admin = AsyncPgConnection::establish(&admin_url()).await.ok()?;
                admin
                    .batch_execute(&format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"))
                    .await
                    .ok()
            })
        })
        .join();
        if !matches!(dropped, Ok(Some(()))) {
            eprintln!("could not drop test database {}", self.name);
        }
    }
}

/// The port a service started with `http.port = 0` listens on, read from its
/// JSON log (the `… is listening` line with `http.port`): no port is picked
/// in advance, so none can be taken by another test meanwhile.
pub async fn port_from_log(log: &std::path::Path) -> anyhow::Result<u16> {
    for _ in 0..300 {
        let text = std::fs::read_to_string(log).unwrap_or_default();
        for line in text.lines() {
            if !line.contains("is listening") {
                continue;
            }
            let value: serde_json::Value = serde_json::from_str(line)?;
            let port = value
                .pointer("/fields/http.port")
                .or_else(|| value.get("http.port"))
                .and_then(serde_json::Value::as_u64)
                .and_then(|port| u16::try_from(port).ok());
            if let Some(port) = port {
                return Ok(port);
            }
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    anyhow::bail!("no `is listening` line in {}", log.display())
}

/// Polls `{base}/ready` until it answers `ok` (a service is ready once its
/// consumer holds its broker connection); returns the last answer, which
/// the caller asserts on.
pub async fn wait_until_ready(client: &reqwest::Client, base: &str) -> serde_json::Value {
    let mut last = serde_json::Value::Null;
    for _ in 0..150 {
        if let Ok(response) = client.get(format!("{base}/ready")).send().await
            && let Ok(body) = response.json::<serde_json::Value>().await
        {
            last = body;
            if last["status"] == "ok" {
                break;
            }
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    last
}

/// The `n` that `sql` (a `SELECT count(*) AS n …`) answers.
pub async fn count(conn: &mut AsyncPgConnection, sql: &str) -> anyhow::Result<i64> {
    use diesel_async::RunQueryDsl;
    #[derive(diesel::QueryableByName)]
    struct Count {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        n: i64,
    }
    let row: Count = diesel::sql_query(sql).get_result(conn).await?;
    Ok(row.n)
}
