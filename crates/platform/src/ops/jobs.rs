//! Jobs as an operator sees them: what is parked and why, retried or
//! discarded by hand (finished jobs are deleted, so only pending and parked
//! ones are here).

use actix_web::{HttpResponse, get, post, web};
use diesel::{
    QueryableByName,
    sql_types::{Array, BigInt, Integer, Jsonb, Nullable, Text, Timestamptz},
};
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use time::OffsetDateTime;
use utoipa::{IntoParams, ToSchema};

use super::{
    Console,
    audit::{self, Action},
    unexpected,
};
use crate::{auth::Authenticated, problem::Problem};

/// A pending or parked job, its payload masked.
#[derive(Debug, Clone, Serialize, QueryableByName, ToSchema)]
pub struct JobView {
    #[diesel(sql_type = BigInt)]
    pub id: i64,
    /// What it does (`pay`, `refund`, …).
    #[diesel(sql_type = Text)]
    pub kind: String,
    /// The work it stands for within its kind (an order, a payment, …).
    #[diesel(sql_type = Text)]
    pub key: String,
    /// `pending` or `parked`.
    #[diesel(sql_type = Text)]
    pub state: String,
    /// Attempts so far.
    #[diesel(sql_type = Integer)]
    pub attempts: i32,
    /// Why the last attempt failed.
    #[diesel(sql_type = Nullable<Text>)]
    pub last_error: Option<String>,
    /// When it runs next (pending), or when it was parked.
    #[diesel(sql_type = Timestamptz)]
    #[serde(with = "time::serde::rfc3339")]
    pub run_at: OffsetDateTime,
    #[diesel(sql_type = Timestamptz)]
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    /// What it carries, personal data and credentials masked.
    #[diesel(sql_type = Jsonb)]
    #[schema(value_type = Object)]
    pub payload: Value,
}

impl JobView {
    fn masked(mut self) -> Self {
        super::mask::json(&mut self.payload);
        self
    }
}

const COLUMNS: &str = "id, kind, key, state, attempts, last_error, run_at, created_at, payload";

/// The jobs of `table` that concern `order_id`: those whose payload names
/// it, and those keyed by it or by one of `keys` (its payments, refunds…).
pub async fn concerning(
    conn: &mut AsyncPgConnection,
    table: &str,
    order_id: &str,
    keys: &[String],
) -> diesel::QueryResult<Vec<JobView>> {
    let jobs: Vec<JobView> = diesel::sql_query(format!(
        "SELECT {COLUMNS} FROM {table} \
         WHERE payload->>'order_id' = $1 OR split_part(key, ':', 1) = $1 OR key = ANY($2) \
         ORDER BY created_at, id"
    ))
    .bind::<Text, _>(order_id)
    .bind::<Array<Text>, _>(keys)
    .load(conn)
    .await?;
    Ok(jobs.into_iter().map(JobView::masked).collect())
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct JobQuery {
    /// `parked` (default), `pending` or `all`.
    pub state: Option<String>,
    /// Only this kind.
    pub kind: Option<String>,
    /// At most this many, newest first (1–500, default 50).
    pub limit: Option<i64>,
}

/// The service's jobs, parked ones by default.
#[utoipa::path(
    get, path = "/api/v1/ops/jobs", tag = "ops",
    params(JobQuery),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The jobs that match, newest first", body = [JobView]),
        (status = 400, description = "Invalid query (`validation_error`)", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not an operator (`forbidden`)", body = Problem, content_type = "application/problem+json"),
    )
)]
#[get("/jobs")]
pub async fn list_jobs(
    Authenticated(principal): Authenticated,
    console: web::Data<Console>,
    query: web::Query<JobQuery>,
) -> Result<HttpResponse, Problem> {
    console.operator(&principal)?;
    let limit = super::limit(query.limit)?;
    let state = super::state_filter(query.state.as_deref(), "parked", &["parked", "pending"])?;
    let mut conn = console.connection().await?;
    let jobs: Vec<JobView> = diesel::sql_query(format!(
        "SELECT {COLUMNS} FROM {} WHERE ($1::text IS NULL OR state = $1) \
           AND ($2::text IS NULL OR kind = $2) ORDER BY id DESC LIMIT $3",
        console.ops.jobs_table
    ))
    .bind::<Nullable<Text>, _>(state)
    .bind::<Nullable<Text>, _>(query.kind.as_deref())
    .bind::<BigInt, _>(limit)
    .load(&mut conn)
    .await
    .map_err(unexpected)?;
    Ok(HttpResponse::Ok().json(jobs.into_iter().map(JobView::masked).collect::<Vec<_>>()))
}

async fn load(
    conn: &mut AsyncPgConnection,
    table: &str,
    id: i64,
    lock: bool,
) -> Result<JobView, Problem> {
    let sql = format!(
        "SELECT {COLUMNS} FROM {table} WHERE id = $1{}",
        if lock { " FOR UPDATE" } else { "" }
    );
    super::find_one(conn, sql, id)
        .await?
        .ok_or_else(|| Problem::not_found(format!("no job {id} (finished jobs are deleted)")))
}

/// One job: its attempts, last error and payload (masked).
#[utoipa::path(
    get, path = "/api/v1/ops/jobs/{id}", tag = "ops",
    params(("id" = i64, Path, description = "Job id")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The job", body = JobView),
        (status = 403, description = "Not an operator (`forbidden`)", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such job, or it finished (`not_found`)", body = Problem, content_type = "application/problem+json"),
    )
)]
#[get("/jobs/{id}")]
pub async fn find_job(
    Authenticated(principal): Authenticated,
    console: web::Data<Console>,
    id: web::Path<i64>,
) -> Result<HttpResponse, Problem> {
    console.operator(&principal)?;
    let mut conn = console.connection().await?;
    let job = load(&mut conn, console.ops.jobs_table, id.into_inner(), false).await?;
    Ok(HttpResponse::Ok().json(job.masked()))
}

/// Runs a parked job again, at once, with a fresh count of attempts.
#[utoipa::path(
    post, path = "/api/v1/ops/jobs/{id}/retry", tag = "ops",
    params(("id" = i64, Path, description = "Job id")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Pending again (now, or it already was)", body = JobView),
        (status = 403, description = "Not an operator (`forbidden`)", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such job, or it finished (`not_found`)", body = Problem, content_type = "application/problem+json"),
    )
)]
#[post("/jobs/{id}/retry")]
pub async fn retry_job(
    Authenticated(principal): Authenticated,
    console: web::Data<Console>,
    id: web::Path<i64>,
) -> Result<HttpResponse, Problem> {
    let operator = console.operator(&principal)?;
    let id = id.into_inner();
    let table = console.ops.jobs_table;
    let service = console.ops.service;
    let mut conn = console.connection().await?;
    let (job, action) = conn
        .transaction(
            async move |conn| -> Result<(JobView, Option<Action>), Problem> {
                let job = load(conn, table, id, true).await?;
                if job.state != "parked" {
                    return Ok((job, None));
                }
                let job: JobView = diesel::sql_query(format!(
                    "UPDATE {table} SET state = 'pending', attempts = 0, run_at = now() \
                 WHERE id = $1 RETURNING {COLUMNS}"
                ))
                .bind::<BigInt, _>(id)
                .get_result(conn)
                .await?;
                let action = Action {
                    operator,
                    action: "job.retry",
                    target: format!("job:{id}"),
                    detail: serde_json::json!({"kind": job.kind, "key": job.key}),
                };
                audit::record(conn, service, &action).await?;
                Ok((job, Some(action)))
            },
        )
        .await?;
    if let Some(action) = action {
        audit::log(&action);
        console.ops.wake_jobs.notify_one();
    }
    Ok(HttpResponse::Ok().json(job.masked()))
}

/// Gives up a parked job for good (it is deleted; the audit trail keeps
/// what it was).
#[utoipa::path(
    post, path = "/api/v1/ops/jobs/{id}/discard", tag = "ops",
    params(("id" = i64, Path, description = "Job id")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Discarded: the job as it was", body = JobView),
        (status = 403, description = "Not an operator (`forbidden`)", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such job, or it finished or was discarded (`not_found`)", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "It is pending, not parked (`job_not_parked`)", body = Problem, content_type = "application/problem+json"),
    )
)]
#[post("/jobs/{id}/discard")]
pub async fn discard_job(
    Authenticated(principal): Authenticated,
    console: web::Data<Console>,
    id: web::Path<i64>,
) -> Result<HttpResponse, Problem> {
    let operator = console.operator(&principal)?;
    let id = id.into_inner();
    let table = console.ops.jobs_table;
    let service = console.ops.service;
    let mut conn = console.connection().await?;
    let (job, action) = conn
        .transaction(async move |conn| -> Result<(JobView, Action), Problem> {
            let job = load(conn, table, id, true).await?.masked();
            if job.state != "parked" {
                return Err(Problem::new(
                    actix_web::http::StatusCode::CONFLICT,
                    "job_not_parked",
                    "Only a parked job can be discarded",
                ));
            }
            diesel::sql_query(format!("DELETE FROM {table} WHERE id = $1"))
                .bind::<BigInt, _>(id)
                .execute(conn)
                .await?;
            let action = Action {
                operator,
                action: "job.discard",
                target: format!("job:{id}"),
                detail: serde_json::json!({
                    "kind": job.kind,
                    "key": job.key,
                    "attempts": job.attempts,
                    "last_error": job.last_error,
                    "payload": job.payload,
                }),
            };
            audit::record(conn, service, &action).await?;
            Ok((job, action))
        })
        .await?;
    audit::log(&action);
    Ok(HttpResponse::Ok().json(job))
}
