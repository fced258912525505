//! PostgreSQL: the pooled async connections every request uses, and migrations.
//!
//! Connections are diesel-async `AsyncPgConnection`s (tokio-postgres underneath,
//! no libpq) in a deadpool pool; each caches its prepared statements, so a hot
//! query is parsed and planned once per connection.

use std::time::Duration;

use anyhow::Context;
use diesel::connection::SimpleConnection;
use diesel_async::{
    AsyncConnection, AsyncPgConnection, RunQueryDsl,
    async_connection_wrapper::AsyncConnectionWrapper,
    pooled_connection::{AsyncDieselConnectionManager, ManagerConfig, RecyclingMethod, deadpool},
};
use diesel_migrations::{EmbeddedMigrations, MigrationHarness};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

/// The pool type both services use.
pub type PgPool = deadpool::Pool<AsyncPgConnection>;
/// A connection checked out of [`PgPool`].
pub type PooledConnection = deadpool::Object<AsyncPgConnection>;

/// `database:` section of a service's configuration.
#[derive(Debug, Clone, Deserialize)]
pub struct DatabaseConfig {
    /// `postgres://user:password@host:port/database`; never logged.
    pub url: SecretString,
    /// Maximum pooled connections.
    pub pool_size: usize,
    /// How long a request waits for a free connection before failing.
    pub acquire_timeout_ms: u64,
    /// Apply pending migrations when the service starts.
    pub migrate_on_start: bool,
}

/// Builds the pool; connections are opened lazily, so this never blocks.
pub fn build_pool(config: &DatabaseConfig) -> anyhow::Result<PgPool> {
    // Checking a connection out costs no round trip: a connection is reused
    // unless the driver knows it broke (`Fast`), instead of a `SELECT 1` per
    // checkout (`Verified`). A connection that died unnoticed fails the one
    // request that uses it; `/ready`'s watcher notices a database that is gone.
    let mut setup = ManagerConfig::default();
    setup.recycling_method = RecyclingMethod::Fast;
    let manager = AsyncDieselConnectionManager::<AsyncPgConnection>::new_with_config(
        config.url.expose_secret(),
        setup,
    );
    let timeout = Duration::from_millis(config.acquire_timeout_ms);
    deadpool::Pool::builder(manager)
        .max_size(config.pool_size)
        .runtime(::deadpool::Runtime::Tokio1)
        .wait_timeout(Some(timeout))
        .create_timeout(Some(timeout))
        .build()
        .context("building the database pool")
}

/// Checks out a connection, with the pool's error turned into context.
pub async fn connection(pool: &PgPool) -> anyhow::Result<PooledConnection> {
    pool.get()
        .await
        .map_err(|error| anyhow::anyhow!("no database connection available: {error}"))
}

/// `SELECT 1` through the pool: what `/ready` asks.
pub async fn ping(pool: &PgPool) -> anyhow::Result<()> {
    let mut conn = connection(pool).await?;
    diesel::sql_query("SELECT 1")
        .execute(&mut conn)
        .await
        .context("pinging the database")?;
    Ok(())
}

/// Applies pending `migrations` to `schema`, creating the schema if needed.
///
/// diesel's migration harness is synchronous, so it runs on a blocking thread
/// through `AsyncConnectionWrapper`. The migrations table lives in the service's
/// own schema (the service touches no other), and an advisory lock keyed by the
/// schema name makes concurrent start-ups of several instances take turns.
pub async fn run_migrations(
    url: &SecretString,
    schema: &'static str,
    migrations: EmbeddedMigrations,
) -> anyhow::Result<Vec<String>> {
    let url = url.clone();
    tokio::task::spawn_blocking(move || -> anyhow::Result<Vec<String>> {
        let mut conn: AsyncConnectionWrapper<AsyncPgConnection> =
            diesel::Connection::establish(url.expose_secret())
                .context("connecting to the database to migrate")?;
        // `CREATE SCHEMA IF NOT EXISTS` needs the CREATE privilege on the
        // database even when the schema exists; a service role that merely owns
        // its provisioned schema lacks it, so only create what is missing.
        conn.batch_execute(&format!(
            "SELECT pg_advisory_lock(hashtext('migrate:{schema}'));
             DO $$ BEGIN
                 IF NOT EXISTS (SELECT FROM pg_namespace WHERE nspname = '{schema}') THEN
                     CREATE SCHEMA {schema};
                 END IF;
             END $$;
             SET search_path TO {schema};"
        ))
        .map_err(|error| anyhow::anyhow!("preparing schema {schema}: {error:?}"))?;
        let applied = conn
            .run_pending_migrations(migrations)
            .map_err(|error| anyhow::anyhow!("migration failed: {error}"))?
            .iter()
            .map(ToString::to_string)
            .collect();
        conn.batch_execute(&format!(
            "SELECT pg_advisory_unlock(hashtext('migrate:{schema}'));"
        ))
        .context("releasing the migration lock")?;
        Ok(applied)
    })
    .await
    .context("the migration task panicked")?
}

/// Opens a single connection outside any pool (tools, tests).
pub async fn connect(url: &str) -> anyhow::Result<AsyncPgConnection> {
    AsyncPgConnection::establish(url)
        .await
        .context("connecting to the database")
}
