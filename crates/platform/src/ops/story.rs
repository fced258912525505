//! The parts of an order's story every service tells the same way: its
//! unfinished jobs and its dead letters that name the order.

use contracts::ops::{Step, StepKind};
use diesel::sql_types::Text;
use diesel_async::{AsyncPgConnection, RunQueryDsl};

use super::{Ops, dead_letters::DeadLetter};

/// The service's pending and parked jobs concerning `order_id` (or one of
/// `keys`), and its dead letters naming it, as steps.
pub async fn common_steps(
    conn: &mut AsyncPgConnection,
    ops: &Ops,
    order_id: &str,
    keys: &[String],
) -> diesel::QueryResult<Vec<Step>> {
    let mut steps = Vec::new();
    for job in super::jobs::concerning(conn, ops.jobs_table, order_id, keys).await? {
        let mut summary = format!("{}, {} attempt(s)", job.state, job.attempts);
        if let Some(error) = &job.last_error {
            summary.push_str(&format!("; last error: {error}"));
        }
        steps.push(Step {
            at: job.created_at,
            service: ops.service.to_owned(),
            kind: StepKind::Job,
            name: job.kind.clone(),
            summary,
            actor: None,
            trace_id: contracts::ops::trace_id(
                job.payload.get("traceparent").and_then(|t| t.as_str()),
            ),
        });
    }
    let letters: Vec<DeadLetter> = diesel::sql_query(format!(
        "SELECT {} FROM {} WHERE subject = $1 ORDER BY id",
        super::dead_letters::COLUMNS,
        ops.table("dead_letters")
    ))
    .bind::<Text, _>(order_id)
    .load(conn)
    .await?;
    for letter in letters {
        steps.push(Step {
            at: letter.dead_lettered_at,
            service: ops.service.to_owned(),
            kind: StepKind::DeadLetter,
            name: letter.routing_key.clone(),
            summary: format!(
                "{} (dead letter {}, dead-lettered {} time(s)): {}",
                letter.state, letter.id, letter.times_dead_lettered, letter.reason
            ),
            actor: None,
            trace_id: None,
        });
    }
    Ok(steps)
}
