//! The console for the people on call, shared by both services: what went
//! wrong and the means to fix it, without `psql` or `rabbitmqctl`.
//!
//! Under `/api/v1/ops`, behind the service's own ops scope (`orders.ops`,
//! `payments.ops`; no other scope, not even admin, opens it):
//! - **dead letters** ([`dead_letters`]): every message the consumer gave up
//!   on is kept in the service's `dead_letters` table by a small consumer of
//!   its dead-letter queue, so it can be listed, inspected (masked),
//!   redriven to the queue it came from once, or discarded;
//! - **jobs** ([`jobs`]): parked (and pending) jobs listed and inspected,
//!   a parked one retried or discarded;
//! - **the outbox** ([`outbox`]): backlog, oldest age, counts per type, and
//!   a range of positions re-published (consumers deduplicate by event id);
//! - **the audit trail** ([`audit`]): every action that changes something is
//!   recorded with who, what and when, in the `ops_audit` table (in the
//!   transaction of the change) and in the logs.
//!
//! Each service adds its own views to the same scope (orders: an order's
//! story across both services and projection rebuilds).

pub mod audit;
pub mod dead_letters;
pub mod jobs;
pub mod mask;
pub mod outbox;
pub mod story;

use std::sync::Arc;

use actix_web::web;
use secrecy::SecretString;
use tokio::sync::Notify;

use crate::{
    auth::Principal,
    db::PgPool,
    problem::Problem,
    relay::{OutboxSignal, OutboxSource},
};

/// What the console of one service works on.
pub struct Ops {
    /// The service's name (`orders`): its schema and its log name.
    pub service: &'static str,
    /// The scope every console request needs (`orders.ops`).
    pub scope: &'static str,
    /// The service's jobs table (`orders.jobs`).
    pub jobs_table: &'static str,
    /// Wakes the service's job workers (a retried job runs at once).
    pub wake_jobs: Arc<Notify>,
    /// The service's outbox.
    pub outbox: OutboxSource,
    /// Wakes the relay after a range is marked for re-publishing.
    pub outbox_signal: OutboxSignal,
    /// The queue the service consumes; its dead letters are `<queue>.dlq`,
    /// redriven through `<queue>.redrive`.
    pub queue: String,
    /// The broker, for redrives (never logged).
    pub amqp_url: SecretString,
}

impl Ops {
    /// The console's handle on `pool` (each HTTP worker has its own pool).
    pub fn console(self: &Arc<Self>, pool: PgPool) -> Console {
        Console {
            ops: self.clone(),
            pool,
        }
    }

    fn table(&self, name: &str) -> String {
        format!("{}.{name}", self.service)
    }
}

/// The console's request handlers' state (`web::Data<Console>`).
#[derive(Clone)]
pub struct Console {
    pub ops: Arc<Ops>,
    pub pool: PgPool,
}

impl Console {
    /// A connection of the console's pool (`503` when none comes in time).
    pub async fn connection(&self) -> Result<crate::db::PooledConnection, Problem> {
        crate::db::connection(&self.pool)
            .await
            .map_err(|error| Problem::internal(&error))
    }

    /// `403` unless the caller holds the ops scope; the operator's name
    /// otherwise (the token's subject), for the audit trail.
    pub fn operator(&self, principal: &Principal) -> Result<String, Problem> {
        principal.require(self.ops.scope, &[])?;
        Ok(principal.subject.clone())
    }
}

/// The console's routes, under `/api/v1/ops`, with a service's own `extra`
/// ones. Register it before the service's `/api/v1` scope (actix matches
/// scopes in order).
pub fn scope(extra: impl FnOnce(actix_web::Scope) -> actix_web::Scope) -> actix_web::Scope {
    extra(
        web::scope("/api/v1/ops")
            .service(dead_letters::list_dead_letters)
            .service(dead_letters::find_dead_letter)
            .service(dead_letters::redrive_dead_letter)
            .service(dead_letters::discard_dead_letter)
            .service(jobs::list_jobs)
            .service(jobs::find_job)
            .service(jobs::retry_job)
            .service(jobs::discard_job)
            .service(outbox::outbox_status)
            .service(outbox::republish_outbox)
            .service(audit::list_audit),
    )
}

/// How many rows a list answers at most, and by default.
pub const MAX_LIMIT: i64 = 500;
pub const DEFAULT_LIMIT: i64 = 50;

fn limit(requested: Option<i64>) -> Result<i64, Problem> {
    match requested {
        None => Ok(DEFAULT_LIMIT),
        Some(limit) if (1..=MAX_LIMIT).contains(&limit) => Ok(limit),
        Some(_) => Err(Problem::validation(vec![crate::problem::FieldError::new(
            "limit",
            format!("must be between 1 and {MAX_LIMIT}"),
        )])),
    }
}

/// The `state` a list asks for: `default` when none, every state for
/// `all`, one of `allowed`, or a `400`.
fn state_filter<'a>(
    requested: Option<&'a str>,
    default: &'static str,
    allowed: &[&str],
) -> Result<Option<&'a str>, Problem> {
    match requested {
        None => Ok(Some(default)),
        Some("all") => Ok(None),
        Some(state) if allowed.contains(&state) => Ok(Some(state)),
        Some(_) => Err(Problem::validation(vec![crate::problem::FieldError::new(
            "state",
            format!("must be one of {}, all", allowed.join(", ")),
        )])),
    }
}

/// The row `sql` (with `$1` the id) finds, if any.
async fn find_one<T>(
    conn: &mut diesel_async::AsyncPgConnection,
    sql: String,
    id: i64,
) -> Result<Option<T>, Problem>
where
    T: diesel::QueryableByName<diesel::pg::Pg> + Send + 'static,
{
    use diesel::OptionalExtension;
    use diesel_async::RunQueryDsl;
    diesel::sql_query(sql)
        .bind::<diesel::sql_types::BigInt, _>(id)
        .get_result(conn)
        .await
        .optional()
        .map_err(unexpected)
}

fn unexpected(error: impl Into<anyhow::Error>) -> Problem {
    Problem::internal(&error.into())
}
