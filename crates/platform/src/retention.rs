//! Bounded tables: what only guards against duplicates (the inbox), what is
//! already delivered (published outbox rows) and parked jobs nobody came
//! back for are deleted by age, in small batches, so storage stays flat
//! under steady load. (Expired Idempotency-Keys have their own sweep; the
//! orders event store is the history itself and is never pruned.)
//!
//! Pruning the inbox is safe past any redelivery window: a consumer that
//! meets an event again after its inbox row is gone decides on the current
//! state, which already holds the event's effect (both services' handlers
//! are idempotent by their domain rules; the inbox is the fast path).

use std::time::Duration;

use diesel::sql_types::BigInt;
use diesel_async::RunQueryDsl;
use serde::Deserialize;

use crate::db::PgPool;

/// `retention:` of a service's configuration.
#[derive(Debug, Clone, Deserialize)]
pub struct RetentionConfig {
    /// How often to prune; 0 turns pruning off.
    pub every_ms: u64,
    /// Consumed event ids are kept this long.
    pub inbox_days: u32,
    /// Published outbox rows are kept this long.
    pub outbox_days: u32,
    /// Parked jobs (kept for an operator to look at) are kept this long.
    pub parked_jobs_days: u32,
    /// Dead letters an operator redrove or discarded are kept this long
    /// (open ones are kept until an operator settles them).
    #[serde(default = "default_dead_letters_days")]
    pub dead_letters_days: u32,
}

fn default_dead_letters_days() -> u32 {
    30
}

/// One table's rule: rows matching `older_than` (a condition with `$1`, an
/// age in seconds) are deleted.
#[derive(Debug, Clone)]
pub struct Rule {
    pub table: String,
    pub older_than: &'static str,
    pub max_age: Duration,
}

/// What every service prunes in its `schema`: consumed event ids, parked
/// jobs and settled dead letters (the `inbox`, `jobs` and `dead_letters`
/// tables of the platform's layout; the console's audit trail is kept).
pub fn standard_rules(schema: &str, config: &RetentionConfig) -> Vec<Rule> {
    vec![
        Rule {
            table: format!("{schema}.inbox"),
            older_than: "consumed_at < now() - $1 * interval '1 second'",
            max_age: days(config.inbox_days),
        },
        Rule {
            table: format!("{schema}.jobs"),
            older_than: "state = 'parked' AND run_at < now() - $1 * interval '1 second'",
            max_age: days(config.parked_jobs_days),
        },
        Rule {
            table: format!("{schema}.dead_letters"),
            older_than: "state <> 'dead' AND settled_at < now() - $1 * interval '1 second'",
            max_age: days(config.dead_letters_days),
        },
    ]
}

/// Rows deleted per statement, so no prune holds locks for long.
const BATCH: i64 = 5_000;

/// Deletes what every rule allows; returns the rows deleted per table.
pub async fn prune<'a>(
    conn: &mut diesel_async::AsyncPgConnection,
    rules: &'a [Rule],
) -> anyhow::Result<Vec<(&'a str, usize)>> {
    let mut deleted = Vec::with_capacity(rules.len());
    for rule in rules {
        let sql = format!(
            "DELETE FROM {table} WHERE ctid IN \
             (SELECT ctid FROM {table} WHERE {condition} LIMIT {BATCH})",
            table = rule.table,
            condition = rule.older_than,
        );
        let age = i64::try_from(rule.max_age.as_secs()).unwrap_or(i64::MAX);
        let mut total = 0;
        loop {
            let rows = diesel::sql_query(&sql)
                .bind::<BigInt, _>(age)
                .execute(conn)
                .await?;
            total += rows;
            if i64::try_from(rows).unwrap_or(0) < BATCH {
                break;
            }
        }
        metrics::counter!("rows_pruned_total", "table" => rule.table.clone())
            .increment(total as u64);
        deleted.push((rule.table.as_str(), total));
    }
    Ok(deleted)
}

/// Prunes every `config.every_ms`, for ever (the first time one period
/// after start).
pub async fn run(pool: PgPool, rules: Vec<Rule>, config: RetentionConfig) {
    if config.every_ms == 0 {
        tracing::info!("pruning is off");
        return;
    }
    let period = Duration::from_millis(config.every_ms);
    let mut every = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
    loop {
        every.tick().await;
        let pruned = async {
            let mut conn = crate::db::connection(&pool).await?;
            prune(&mut conn, &rules).await
        }
        .await;
        match pruned {
            Ok(deleted) => {
                for (table, rows) in deleted.into_iter().filter(|(_, rows)| *rows > 0) {
                    tracing::info!(table, rows, "pruned");
                }
            }
            Err(error) => tracing::warn!(error.message = %format!("{error:#}"), "pruning failed"),
        }
    }
}

/// `days` as a duration.
pub fn days(days: u32) -> Duration {
    Duration::from_secs(u64::from(days) * 86_400)
}
