//! The audit trail of the console: who did what to what, and when.
//!
//! Recorded in the transaction of the change it describes (an action that
//! did not commit left no entry; one that did cannot lose its entry), and
//! logged once it committed.

use actix_web::{HttpResponse, get, web};
use diesel::{
    QueryableByName,
    sql_types::{BigInt, Jsonb, Nullable, Text, Timestamptz},
};
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use utoipa::{IntoParams, ToSchema};

use super::{Console, unexpected};
use crate::{auth::Authenticated, problem::Problem};

/// One action of an operator.
#[derive(Debug, Clone, Serialize, QueryableByName, ToSchema)]
pub struct AuditEntry {
    #[diesel(sql_type = BigInt)]
    pub id: i64,
    /// The operator (the token's subject).
    #[diesel(sql_type = Text)]
    pub operator: String,
    /// What was done, e.g. `dead_letter.redrive`.
    #[diesel(sql_type = Text)]
    pub action: String,
    /// What it was done to, e.g. `dead_letter:42`.
    #[diesel(sql_type = Text)]
    pub target: String,
    /// What changed (never personal or card data).
    #[diesel(sql_type = Jsonb)]
    #[schema(value_type = Object)]
    pub detail: serde_json::Value,
    #[diesel(sql_type = Nullable<Text>)]
    pub traceparent: Option<String>,
    #[diesel(sql_type = Timestamptz)]
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
}

/// One action about to be recorded.
#[derive(Debug, Clone)]
pub struct Action {
    pub operator: String,
    pub action: &'static str,
    pub target: String,
    pub detail: serde_json::Value,
}

/// Records `action` in `service`'s `ops_audit`, in the caller's transaction.
pub async fn record(
    conn: &mut AsyncPgConnection,
    service: &str,
    action: &Action,
) -> diesel::QueryResult<()> {
    let traceparent = crate::telemetry::traceparent(&tracing::Span::current());
    diesel::sql_query(format!(
        "INSERT INTO {service}.ops_audit (operator, action, target, detail, traceparent) \
         VALUES ($1, $2, $3, $4, $5)"
    ))
    .bind::<Text, _>(&action.operator)
    .bind::<Text, _>(action.action)
    .bind::<Text, _>(&action.target)
    .bind::<Jsonb, _>(&action.detail)
    .bind::<Nullable<Text>, _>(traceparent)
    .execute(conn)
    .await?;
    Ok(())
}

/// Logs `action` once it has committed.
pub fn log(action: &Action) {
    tracing::info!(
        audit = true,
        ops.operator = %action.operator,
        ops.action = action.action,
        ops.target = %action.target,
        ops.detail = %action.detail,
        "operator action"
    );
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AuditQuery {
    /// Only this operator's actions.
    pub operator: Option<String>,
    /// Only actions on this target (e.g. `dead_letter:42`).
    pub target: Option<String>,
    /// At most this many, newest first (1–500, default 50).
    pub limit: Option<i64>,
}

/// The console's audit trail, newest first.
#[utoipa::path(
    get, path = "/api/v1/ops/audit", tag = "ops",
    params(AuditQuery),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The operators' actions, newest first", body = [AuditEntry]),
        (status = 400, description = "Invalid query (`validation_error`)", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not an operator (`forbidden`)", body = Problem, content_type = "application/problem+json"),
    )
)]
#[get("/audit")]
pub async fn list_audit(
    Authenticated(principal): Authenticated,
    console: web::Data<Console>,
    query: web::Query<AuditQuery>,
) -> Result<HttpResponse, Problem> {
    console.operator(&principal)?;
    let limit = super::limit(query.limit)?;
    let mut conn = console.connection().await?;
    let entries: Vec<AuditEntry> = diesel::sql_query(format!(
        "SELECT id, operator, action, target, detail, traceparent, at FROM {} \
         WHERE ($1::text IS NULL OR operator = $1) AND ($2::text IS NULL OR target = $2) \
         ORDER BY id DESC LIMIT $3",
        console.ops.table("ops_audit")
    ))
    .bind::<Nullable<Text>, _>(query.operator.as_deref())
    .bind::<Nullable<Text>, _>(query.target.as_deref())
    .bind::<BigInt, _>(limit)
    .load(&mut conn)
    .await
    .map_err(unexpected)?;
    Ok(HttpResponse::Ok().json(entries))
}

/// Records `action` on its own (for an action made of many transactions,
/// such as a rebuild) and logs it.
pub async fn record_now(console: &Console, action: &Action) -> Result<(), Problem> {
    let mut conn = console.connection().await?;
    record(&mut conn, console.ops.service, action)
        .await
        .map_err(unexpected)?;
    log(action);
    Ok(())
}
