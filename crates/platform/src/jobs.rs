//! Durable background work: one small job layer both services share.
//!
//! A job is a row in the service's own `jobs` table, written in the
//! transaction that decides the work (a payment to dispatch, stock to release,
//! a charge to refund, a payment to reconcile), so it exists exactly when the
//! decision does. Workers then run it until it is done:
//!
//! - **Claimed with a lease**, not a held row lock: claiming moves `run_at`
//!   past the lease and counts the attempt in one statement (`FOR UPDATE SKIP
//!   LOCKED`, so instances share the work), then the job runs with no
//!   transaction open. A worker that dies mid-job simply lets the lease run
//!   out and another worker takes the job over; handlers are therefore
//!   idempotent (every remote call they make is keyed).
//! - **Once per key**: `(kind, key)` is unique among live jobs, so deciding
//!   the same work twice (a redelivered event, two paths reaching one refund)
//!   enqueues it once. Finished jobs are deleted.
//! - **Back-off with jitter**: a failed attempt is retried after an
//!   exponentially growing, randomly jittered delay, so a dependency coming
//!   back is not hit by every waiting job at the same instant; one that said
//!   when to come back (`Retry-After`) is left alone at least that long.
//! - **Parked, not lost**: after `max_attempts`, or when a handler says the
//!   job can never succeed, it is parked (kept, with its last error, for an
//!   operator) and counted in `jobs_total{outcome="parked"}`.

use crate::db::Prepared;
use std::{collections::HashMap, sync::Arc, time::Duration};

use diesel::{
    QueryableByName,
    sql_types::{Array, BigInt, Double, Integer, Jsonb, Nullable, Text, Timestamptz},
};
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use futures_util::future::{BoxFuture, join_all};
use serde::Deserialize;
use time::OffsetDateTime;
use tokio::sync::Notify;

use crate::db::PgPool;

/// Work to enqueue.
#[derive(Debug, Clone)]
pub struct NewJob {
    /// What to do; selects the handler.
    pub kind: &'static str,
    /// Identifies the work within its kind: enqueuing the same key again while
    /// the first is pending does nothing.
    pub key: String,
    pub payload: serde_json::Value,
    /// Not before this time (`None`: at once).
    pub run_at: Option<OffsetDateTime>,
}

impl NewJob {
    pub fn now(kind: &'static str, key: impl Into<String>, payload: serde_json::Value) -> Self {
        Self {
            kind,
            key: key.into(),
            payload,
            run_at: None,
        }
    }
}

/// A claimed job.
#[derive(Debug, Clone, QueryableByName)]
pub struct Job {
    #[diesel(sql_type = BigInt)]
    pub id: i64,
    #[diesel(sql_type = Text)]
    pub kind: String,
    #[diesel(sql_type = Text)]
    pub key: String,
    #[diesel(sql_type = Jsonb)]
    pub payload: serde_json::Value,
    /// Attempts so far, this one included (1 on the first run).
    #[diesel(sql_type = Integer)]
    pub attempts: i32,
}

/// How an attempt ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Finished: the job is deleted.
    Done,
    /// Try again later (back-off with jitter), up to `max_attempts`.
    Retry(String),
    /// Try again no sooner than this (a dependency said when, with
    /// `Retry-After`; capped at `max_backoff_ms`), nor sooner than the
    /// back-off; counted as an attempt.
    RetryAfter(Duration, String),
    /// Can never succeed: keep it for an operator.
    Park(String),
}

/// Runs jobs of one kind.
pub trait Handler: Send + Sync + 'static {
    fn run<'a>(&'a self, job: &'a Job) -> BoxFuture<'a, Outcome>;
}

/// A kind of job as one type: its payload, and the name it is stored under
/// ([`Kind::KIND`]). Registered with [`Worker::register`] and run by a
/// [`Runs`] of it, so a kind's name, payload and handler cannot drift
/// apart, and no handler matches on strings.
pub trait Kind: serde::Serialize + serde::de::DeserializeOwned + Send + 'static {
    /// The name stored with every job of this kind (stable: jobs written by
    /// an older release are still read by it).
    const KIND: &'static str;

    /// This work as a job due now, identified by `key` within its kind.
    fn job(&self, key: impl Into<String>) -> NewJob {
        // A payload of plain fields always serialises; were it ever not to,
        // the job would be parked as unreadable, not lost.
        NewJob::now(
            Self::KIND,
            key,
            serde_json::to_value(self).unwrap_or(serde_json::Value::Null),
        )
    }
}

/// Runs the jobs of kind `J`.
pub trait Runs<J: Kind>: Send + Sync + 'static {
    fn run(&self, job: J) -> BoxFuture<'_, Outcome>;
}

/// A [`Runs`] seen as the worker's [`Handler`]: the payload read as `J`
/// (an unreadable one is parked).
struct Typed<J, H> {
    runner: Arc<H>,
    kind: std::marker::PhantomData<fn() -> J>,
}

impl<J: Kind, H: Runs<J>> Handler for Typed<J, H> {
    fn run<'a>(&'a self, job: &'a Job) -> BoxFuture<'a, Outcome> {
        match serde_json::from_value::<J>(job.payload.clone()) {
            Ok(payload) => self.runner.run(payload),
            Err(error) => {
                let parked = Outcome::Park(format!("unreadable {} job: {error}", J::KIND));
                Box::pin(async move { parked })
            }
        }
    }
}

/// `jobs:` section of a service's configuration.
#[derive(Debug, Clone, Deserialize)]
pub struct JobsConfig {
    /// Safety-net poll interval (new jobs of this instance wake it at once).
    pub poll_ms: u64,
    /// How long a claimed job is reserved for its worker.
    pub lease_ms: u64,
    /// Jobs claimed and run concurrently per round.
    pub batch_size: i64,
    /// First retry delay; doubles per attempt.
    pub base_backoff_ms: u64,
    /// Longest delay between two attempts.
    pub max_backoff_ms: u64,
    /// Attempts before a job is parked.
    pub max_attempts: i32,
}

/// Enqueues `job` in the caller's transaction; `false` if the same work is
/// already pending. Takes a shared connection so it can join a pipelined
/// batch of statements.
pub async fn enqueue(
    conn: &AsyncPgConnection,
    table: &'static str,
    job: &NewJob,
) -> diesel::QueryResult<bool> {
    let inserted = Prepared(
        diesel::sql_query(format!(
            "INSERT INTO {table} (kind, key, payload, run_at) \
         VALUES ($1, $2, $3, COALESCE($4, now())) ON CONFLICT (kind, key) DO NOTHING"
        ))
        .bind::<Text, _>(job.kind)
        .bind::<Text, _>(&job.key)
        .bind::<Jsonb, _>(&job.payload)
        .bind::<Nullable<Timestamptz>, _>(job.run_at),
    )
    .execute(&mut &*conn)
    .await?;
    Ok(inserted == 1)
}

/// The delay before retry number `attempts` (1 = after the first failure):
/// exponential from `base`, capped at `max`, with "equal jitter" (a random
/// point in the upper half), so retries spread out but still back off.
pub fn backoff(attempts: i32, base: Duration, max: Duration) -> Duration {
    let exponent = u32::try_from(attempts.clamp(1, 30) - 1).unwrap_or(0);
    let cap = base.saturating_mul(1_u32 << exponent.min(20)).min(max);
    let half = cap / 2;
    let jitter = u64::try_from(half.as_micros())
        .ok()
        .filter(|micros| *micros > 0)
        .map_or(0, |micros| fastrand::u64(0..=micros));
    half + Duration::from_micros(jitter)
}

/// Runs the jobs of a table, forever.
pub struct Worker {
    pool: PgPool,
    table: &'static str,
    handlers: HashMap<&'static str, Arc<dyn Handler>>,
    wake: Arc<Notify>,
    config: JobsConfig,
}

#[derive(QueryableByName)]
struct Finished {
    #[diesel(sql_type = Text)]
    kind: String,
    #[diesel(sql_type = Text)]
    state: String,
}

impl Worker {
    /// A worker for `table` (schema-qualified, e.g. `orders.jobs`), woken by
    /// `wake` when this instance enqueues work.
    pub fn new(pool: PgPool, table: &'static str, wake: Arc<Notify>, config: JobsConfig) -> Self {
        Self {
            pool,
            table,
            handlers: HashMap::new(),
            wake,
            config,
        }
    }

    /// Runs jobs of `kind` with `handler`.
    pub fn handle(mut self, kind: &'static str, handler: Arc<dyn Handler>) -> Self {
        self.handlers.insert(kind, handler);
        self
    }

    /// Runs the jobs of kind `J` with `runner`.
    pub fn register<J: Kind, H: Runs<J>>(self, runner: Arc<H>) -> Self {
        self.handle(
            J::KIND,
            Arc::new(Typed::<J, H> {
                runner,
                kind: std::marker::PhantomData,
            }),
        )
    }

    /// Works forever: drains due jobs, then sleeps until woken or the poll
    /// interval passes (or the earliest lease or back-off ends).
    /// Runs due jobs until `stop`; jobs already claimed are finished first
    /// (an unfinished one would only wait for its lease to expire).
    pub async fn run(self, mut stop: crate::http::Stop) {
        let poll = Duration::from_millis(self.config.poll_ms);
        while !*stop.borrow() {
            match self.run_due().await {
                Ok(0) => {
                    tokio::select! {
                        () = self.wake.notified() => {}
                        () = tokio::time::sleep(poll) => {}
                        () = crate::http::stopped(&mut stop) => {}
                    }
                }
                Ok(_) => {}
                Err(error) => {
                    tracing::warn!(job.table = self.table, error.message = %format!("{error:#}"), "running jobs failed");
                    tokio::select! {
                        () = tokio::time::sleep(poll) => {}
                        () = crate::http::stopped(&mut stop) => {}
                    }
                }
            }
        }
    }

    /// Claims the due jobs, runs them concurrently, records their outcomes;
    /// returns how many ran.
    pub async fn run_due(&self) -> anyhow::Result<usize> {
        let kinds: Vec<&str> = self.handlers.keys().copied().collect();
        let mut conn = crate::db::connection(&self.pool).await?;
        let lease = Duration::from_millis(self.config.lease_ms).as_secs_f64();
        let table = self.table;
        let claimed: Vec<Job> = Prepared(diesel::sql_query(format!(
            "UPDATE {table} SET attempts = attempts + 1, run_at = now() + make_interval(secs => $2) \
             WHERE id IN (SELECT id FROM {table} WHERE state = 'pending' AND run_at <= now() \
                 AND kind = ANY($3) ORDER BY run_at LIMIT $1 FOR UPDATE SKIP LOCKED) \
             RETURNING id, kind, key, payload, attempts"
        ))
        .bind::<BigInt, _>(self.config.batch_size)
        .bind::<Double, _>(lease)
        .bind::<Array<Text>, _>(&kinds))
        .load(&mut conn)
        .await?;
        drop(conn);
        if claimed.is_empty() {
            return Ok(0);
        }
        let outcomes = join_all(claimed.iter().map(|job| async move {
            match self.handlers.get(job.kind.as_str()) {
                Some(handler) => handler.run(job).await,
                None => Outcome::Retry(format!("no handler for {}", job.kind)),
            }
        }))
        .await;
        self.finish(&claimed, outcomes).await?;
        Ok(claimed.len())
    }

    async fn finish(&self, jobs: &[Job], outcomes: Vec<Outcome>) -> anyhow::Result<()> {
        let mut done = Vec::new();
        let (mut ids, mut run_at, mut errors, mut park) = (vec![], vec![], vec![], vec![]);
        let now = OffsetDateTime::now_utc();
        let base = Duration::from_millis(self.config.base_backoff_ms);
        let max = Duration::from_millis(self.config.max_backoff_ms);
        for (job, outcome) in jobs.iter().zip(outcomes) {
            match outcome {
                Outcome::Done => {
                    metrics::counter!("jobs_total", "kind" => job.kind.clone(), "outcome" => "done")
                        .increment(1);
                    done.push(job.id);
                }
                Outcome::Retry(error) => {
                    tracing::warn!(job.kind = %job.kind, job.key = %job.key, job.attempts = job.attempts, error.message = %error, "job failed; will retry");
                    ids.push(job.id);
                    run_at.push(now + backoff(job.attempts, base, max));
                    errors.push(error);
                    park.push(false);
                }
                Outcome::RetryAfter(after, error) => {
                    tracing::warn!(job.kind = %job.kind, job.key = %job.key, job.attempts = job.attempts, retry_after_ms = after.as_millis(), error.message = %error, "job deferred as its dependency asked; will retry");
                    ids.push(job.id);
                    run_at.push(now + after.min(max).max(backoff(job.attempts, base, max)));
                    errors.push(error);
                    park.push(false);
                }
                Outcome::Park(error) => {
                    ids.push(job.id);
                    run_at.push(now);
                    errors.push(error);
                    park.push(true);
                }
            }
        }
        let table = self.table;
        let mut conn = crate::db::connection(&self.pool).await?;
        if !done.is_empty() {
            Prepared(
                diesel::sql_query(format!("DELETE FROM {table} WHERE id = ANY($1)"))
                    .bind::<Array<BigInt>, _>(&done),
            )
            .execute(&mut conn)
            .await?;
        }
        if !ids.is_empty() {
            let finished: Vec<Finished> = Prepared(diesel::sql_query(format!(
                "UPDATE {table} AS j SET run_at = v.run_at, last_error = left(v.error, 2000), \
                     state = CASE WHEN v.park OR j.attempts >= $4 THEN 'parked' ELSE 'pending' END \
                 FROM unnest($1::int8[], $2::timestamptz[], $3::text[], $5::bool[]) AS v(id, run_at, error, park) \
                 WHERE j.id = v.id RETURNING j.kind, j.state"
            ))
            .bind::<Array<BigInt>, _>(&ids)
            .bind::<Array<Timestamptz>, _>(&run_at)
            .bind::<Array<Text>, _>(&errors)
            .bind::<Integer, _>(self.config.max_attempts)
            .bind::<Array<diesel::sql_types::Bool>, _>(&park))
            .load(&mut conn)
            .await?;
            for job in finished {
                let outcome = if job.state == "parked" {
                    tracing::error!(job.kind = %job.kind, "job parked: it will not be retried until an operator acts");
                    "parked"
                } else {
                    "retried"
                };
                metrics::counter!("jobs_total", "kind" => job.kind, "outcome" => outcome)
                    .increment(1);
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn back_off_grows_is_capped_and_jittered() {
        let base = Duration::from_millis(100);
        let max = Duration::from_secs(10);
        for attempts in 1..40 {
            let cap = base.saturating_mul(1 << (attempts - 1).min(20)).min(max);
            let delay = backoff(attempts, base, max);
            assert!(delay >= cap / 2 && delay <= cap, "{attempts}: {delay:?}");
        }
        let delays: std::collections::HashSet<_> = (0..50).map(|_| backoff(5, base, max)).collect();
        assert!(delays.len() > 1, "jitter spreads retries");
    }
}
