//! PostgreSQL: the pooled async connections every request uses, and migrations.
//!
//! Connections are diesel-async `AsyncPgConnection`s (tokio-postgres underneath,
//! no libpq) in a deadpool pool; each caches its prepared statements, so a hot
//! query is parsed and planned once per connection.

use std::time::Duration;

use anyhow::Context;
use diesel::connection::SimpleConnection;
use diesel::expression::AsExpression;
use diesel::pg::Pg;
use diesel::query_builder::{AstPass, Query, QueryFragment, QueryId};
use diesel::result::QueryResult;
use diesel::serialize::{self, IsNull, Output, ToSql};
use diesel::sql_types::Json;
use diesel_async::{
    AsyncConnection, AsyncPgConnection, RunQueryDsl,
    async_connection_wrapper::AsyncConnectionWrapper,
    pooled_connection::{AsyncDieselConnectionManager, ManagerConfig, RecyclingMethod, deadpool},
};
use diesel_migrations::{EmbeddedMigrations, MigrationHarness};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use std::io::Write as _;

/// The pool type both services use.
pub type PgPool = deadpool::Pool<AsyncPgConnection>;
/// A connection checked out of [`PgPool`].
pub type PooledConnection = deadpool::Object<AsyncPgConnection>;

/// `database:` section of a service's configuration.
#[derive(Debug, Clone, Deserialize)]
pub struct DatabaseConfig {
    /// `postgres://user:password@host:port/database`; never logged.
    pub url: SecretString,
    /// Connections of the background tasks' pool (relay, consumer, jobs,
    /// sweeps); the HTTP workers share as many again, each with a pool of
    /// `ceil(pool_size / workers)` of its own.
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

/// No connection could be had within `acquire_timeout_ms`: the database is
/// saturated or unreachable. Nothing was done; the request may be retried.
/// [`crate::Problem::internal`] answers it `503` with `Retry-After`, logged
/// without a backtrace.
#[derive(Debug, thiserror::Error)]
#[error("no database connection available: {0}")]
pub struct Unavailable(pub String);

/// Checks out a connection; failing, a [`Unavailable`].
pub async fn connection(pool: &PgPool) -> anyhow::Result<PooledConnection> {
    pool.get()
        .await
        .map_err(|error| anyhow::Error::new(Unavailable(error.to_string())))
}

/// A statement whose SQL text is fixed, prepared once per connection and
/// reused: `Prepared(query)`.
///
/// diesel marks every `sql_query`, every `UPDATE` and every multi-row
/// `INSERT` as unsafe to cache, because their text *may* vary from call to
/// call; diesel-async then prepares them anew on every execution (a Parse and
/// Describe round trip, and PostgreSQL parsing and planning again). Ours do
/// not vary (or vary in a few bounded shapes, such as the number of an
/// order's lines), so they are cached like any other query, keyed by their SQL
/// text and bind types. Never wrap a statement whose text embeds values.
#[derive(Debug, Clone, Copy)]
pub struct Prepared<Q>(pub Q);

impl<Q: QueryFragment<Pg>> QueryFragment<Pg> for Prepared<Q> {
    fn walk_ast<'b>(&'b self, pass: AstPass<'_, 'b, Pg>) -> QueryResult<()> {
        self.0.walk_ast(pass)
    }

    fn is_safe_to_cache_prepared(&self, _backend: &Pg) -> QueryResult<bool> {
        Ok(true)
    }
}

impl<Q> QueryId for Prepared<Q> {
    type QueryId = ();
    // Keyed by the SQL text, never by the Rust type.
    const HAS_STATIC_QUERY_ID: bool = false;
}

impl<Q: Query> Query for Prepared<Q> {
    type SqlType = Q::SqlType;
}

/// JSON already serialised, bound to a `json` column as it is: the text is
/// written once (by serde, straight from the value's own type) and never
/// turned into a `serde_json::Value` tree first.
#[derive(Debug, Clone, PartialEq, Eq, AsExpression)]
#[diesel(sql_type = Json)]
pub struct JsonText(pub String);

impl JsonText {
    /// Serialises `value`.
    pub fn of(value: &impl serde::Serialize) -> serde_json::Result<Self> {
        serde_json::to_string(value).map(Self)
    }
}

impl ToSql<Json, Pg> for JsonText {
    fn to_sql<'b>(&'b self, out: &mut Output<'b, '_, Pg>) -> serialize::Result {
        // `json`'s binary form is its text.
        out.write_all(self.0.as_bytes())?;
        Ok(IsNull::No)
    }
}

/// `SELECT 1` through the pool: what `/ready` asks.
pub async fn ping(pool: &PgPool) -> anyhow::Result<()> {
    let mut conn = connection(pool).await?;
    Prepared(diesel::sql_query("SELECT 1"))
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

/// The unique constraint `error` violated, if that is what it is.
pub fn violated_unique(error: &diesel::result::Error) -> Option<&str> {
    match error {
        diesel::result::Error::DatabaseError(
            diesel::result::DatabaseErrorKind::UniqueViolation,
            info,
        ) => info.constraint_name(),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use diesel::{QueryableByName, sql_types::BigInt, sql_types::Text};

    use super::*;

    #[derive(QueryableByName)]
    struct Count {
        #[diesel(sql_type = BigInt)]
        count: i64,
    }

    async fn prepared_copies(conn: &mut AsyncPgConnection, sql: &str) -> i64 {
        let Count { count } = diesel::sql_query(
            "SELECT count(*) AS count FROM pg_prepared_statements WHERE statement = $1",
        )
        .bind::<Text, _>(sql)
        .get_result(conn)
        .await
        .expect("reading pg_prepared_statements");
        count
    }

    /// The wrapped statement is prepared once and kept; the same text
    /// unwrapped is prepared per execution and closed after it.
    #[tokio::test]
    async fn a_prepared_statement_is_parsed_once_per_connection() {
        let url = std::env::var("TEST_DATABASE_URL")
            .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_owned());
        let mut conn = connect(&url).await.expect("connecting");
        let cached = "SELECT 1 + $1 AS count";
        let uncached = "SELECT 2 + $1 AS count";
        for _ in 0..3 {
            let Count { count } = Prepared(diesel::sql_query(cached).bind::<BigInt, _>(1_i64))
                .get_result(&mut conn)
                .await
                .expect("running the prepared statement");
            assert_eq!(count, 2);
            diesel::sql_query(uncached)
                .bind::<BigInt, _>(1_i64)
                .execute(&mut conn)
                .await
                .expect("running the plain statement");
        }
        assert_eq!(prepared_copies(&mut conn, cached).await, 1);
        assert_eq!(prepared_copies(&mut conn, uncached).await, 0);
    }
}
