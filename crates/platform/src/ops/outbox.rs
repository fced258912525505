//! The outbox as an operator sees it: how far behind the relay is, and
//! a range of events published again (after a subscriber lost them, say).
//! Re-publishing is safe: every event keeps its id, and consumers
//! deduplicate by it.

use actix_web::{HttpResponse, get, post, web};
use diesel::{
    QueryableByName,
    sql_types::{BigInt, Double, Nullable, Text},
};
use diesel_async::{AsyncConnection, RunQueryDsl};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::{
    Console,
    audit::{self, Action},
    unexpected,
};
use crate::{auth::Authenticated, problem::Problem};

/// How many events one re-publish may cover.
pub const MAX_RANGE: i64 = 100_000;

/// Unpublished events of one type.
#[derive(Debug, Clone, Serialize, QueryableByName, ToSchema)]
pub struct TypeCount {
    #[diesel(sql_type = Text)]
    #[serde(rename = "type")]
    pub event_type: String,
    #[diesel(sql_type = BigInt)]
    pub count: i64,
}

/// The outbox's state.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct OutboxStatus {
    /// Events committed but not yet confirmed by the broker.
    pub backlog: i64,
    /// Age of the oldest of them, in seconds (0 when none).
    pub oldest_age_seconds: f64,
    /// The backlog by event type.
    pub unpublished_by_type: Vec<TypeCount>,
    /// The newest position written (`null` when the outbox is empty).
    pub last_position: Option<i64>,
}

#[derive(QueryableByName)]
struct Totals {
    #[diesel(sql_type = BigInt)]
    backlog: i64,
    #[diesel(sql_type = Double)]
    oldest: f64,
    #[diesel(sql_type = Nullable<BigInt>)]
    last_position: Option<i64>,
}

/// The relay's backlog: how many events wait, since when, of which types.
#[utoipa::path(
    get, path = "/api/v1/ops/outbox", tag = "ops",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The outbox's backlog", body = OutboxStatus),
        (status = 403, description = "Not an operator (`forbidden`)", body = Problem, content_type = "application/problem+json"),
    )
)]
#[get("/outbox")]
pub async fn outbox_status(
    Authenticated(principal): Authenticated,
    console: web::Data<Console>,
) -> Result<HttpResponse, Problem> {
    console.operator(&principal)?;
    let table = console.ops.outbox.table;
    let mut conn = console.connection().await?;
    let totals: Totals = diesel::sql_query(format!(
        "SELECT count(*)::int8 AS backlog, \
           COALESCE(EXTRACT(EPOCH FROM now() - min(occurred_at)), 0)::float8 AS oldest, \
           (SELECT max(position) FROM {table}) AS last_position \
         FROM {table} WHERE published_at IS NULL"
    ))
    .get_result(&mut conn)
    .await
    .map_err(unexpected)?;
    let unpublished_by_type: Vec<TypeCount> = diesel::sql_query(format!(
        "SELECT event_type, count(*)::int8 AS count FROM {table} \
         WHERE published_at IS NULL GROUP BY event_type ORDER BY event_type"
    ))
    .load(&mut conn)
    .await
    .map_err(unexpected)?;
    Ok(HttpResponse::Ok().json(OutboxStatus {
        backlog: totals.backlog,
        oldest_age_seconds: totals.oldest,
        unpublished_by_type,
        last_position: totals.last_position,
    }))
}

/// Positions to publish again, both ends included.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RepublishBody {
    pub from_position: i64,
    pub to_position: i64,
}

/// What a re-publish marked.
#[derive(Debug, Serialize, ToSchema)]
pub struct Republished {
    pub from_position: i64,
    pub to_position: i64,
    /// Published events of the range marked to be published again (those
    /// still unpublished, or pruned, are not counted).
    pub marked: i64,
}

/// Publishes a range of positions again, in order, through the relay.
#[utoipa::path(
    post, path = "/api/v1/ops/outbox/republish", tag = "ops",
    request_body = RepublishBody,
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Marked; the relay publishes them again, in order", body = Republished),
        (status = 400, description = "An empty, reversed or too long range (`validation_error`), or malformed JSON (`malformed_request`)", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not an operator (`forbidden`)", body = Problem, content_type = "application/problem+json"),
    )
)]
#[post("/outbox/republish")]
pub async fn republish_outbox(
    Authenticated(principal): Authenticated,
    console: web::Data<Console>,
    crate::json::ApiJson(body): crate::json::ApiJson<RepublishBody>,
) -> Result<HttpResponse, Problem> {
    let operator = console.operator(&principal)?;
    let RepublishBody {
        from_position,
        to_position,
    } = body;
    if from_position < 1 || to_position < from_position || to_position - from_position >= MAX_RANGE
    {
        return Err(Problem::validation(vec![crate::problem::FieldError::new(
            "to_position",
            format!(
                "the range must be 1 <= from_position <= to_position, at most {MAX_RANGE} positions"
            ),
        )]));
    }
    let table = console.ops.outbox.table;
    let service = console.ops.service;
    let mut conn = console.connection().await?;
    let (marked, action) = conn
        .transaction(async move |conn| -> Result<(i64, Action), Problem> {
            let marked = diesel::sql_query(format!(
                "UPDATE {table} SET published_at = NULL \
                 WHERE position BETWEEN $1 AND $2 AND published_at IS NOT NULL"
            ))
            .bind::<BigInt, _>(from_position)
            .bind::<BigInt, _>(to_position)
            .execute(conn)
            .await?;
            let marked = i64::try_from(marked).unwrap_or(i64::MAX);
            let action = Action {
                operator,
                action: "outbox.republish",
                target: format!("outbox:{from_position}-{to_position}"),
                detail: serde_json::json!({"marked": marked}),
            };
            audit::record(conn, service, &action).await?;
            Ok((marked, action))
        })
        .await?;
    audit::log(&action);
    console.ops.outbox_signal.written();
    Ok(HttpResponse::Ok().json(Republished {
        from_position,
        to_position,
        marked,
    }))
}
