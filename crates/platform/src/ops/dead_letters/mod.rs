//! Dead letters: kept, looked at, redriven once, or discarded.
//!
//! A small consumer of the service's dead-letter queue (`<queue>.dlq`)
//! moves every message into the `dead_letters` table (committed before the
//! message is acknowledged, so none is lost), with the reason it was given
//! up on: the consumer's own (`x-dead-letter-reason`), or the broker's when
//! its delivery limit ran out (`x-first-death-reason`, `delivery_limit`).
//!
//! A **redrive** publishes the message, with its original routing key,
//! message id and trace context, through `<queue>.redrive`: a fanout
//! exchange bound to that queue alone, so no other subscriber sees it
//! again. The row is marked `redriven` in the transaction that holds it
//! locked while the broker confirms, so two operators redriving at once
//! publish it once. If it fails again it comes back to the table under the
//! same message id, `dead` again with its new reason: never a loop, since
//! only an operator redrives.

mod keeper;
mod redrive;

pub use keeper::keep;

use actix_web::{HttpResponse, get, post, web};
use diesel::{
    QueryableByName,
    sql_types::{BigInt, Bytea, Integer, Jsonb, Nullable, Text, Timestamptz},
};
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use time::OffsetDateTime;
use utoipa::{IntoParams, ToSchema};

use super::{
    Console, Ops,
    audit::{self, Action},
    unexpected,
};
use crate::{auth::Authenticated, db::PgPool, problem::Problem};

/// A dead letter as listed.
#[derive(Debug, Clone, Serialize, QueryableByName, ToSchema)]
pub struct DeadLetter {
    #[diesel(sql_type = BigInt)]
    pub id: i64,
    /// The queue it was dead-lettered from.
    #[diesel(sql_type = Text)]
    pub queue: String,
    /// The message (CloudEvent) id.
    #[diesel(sql_type = Text)]
    pub message_id: String,
    /// Its routing key: the event type.
    #[diesel(sql_type = Text)]
    #[serde(rename = "type")]
    pub routing_key: String,
    /// Why it was given up on (the last time).
    #[diesel(sql_type = Text)]
    pub reason: String,
    /// The order it names (the CloudEvent's subject), when it names one.
    #[diesel(sql_type = Nullable<Text>)]
    pub subject: Option<String>,
    /// `dead`, `redriven` or `discarded`.
    #[diesel(sql_type = Text)]
    pub state: String,
    /// How often it was dead-lettered.
    #[diesel(sql_type = Integer)]
    pub times_dead_lettered: i32,
    /// How often an operator redrove it.
    #[diesel(sql_type = Integer)]
    pub redrives: i32,
    #[diesel(sql_type = Timestamptz)]
    #[serde(with = "time::serde::rfc3339")]
    pub first_dead_lettered_at: OffsetDateTime,
    #[diesel(sql_type = Timestamptz)]
    #[serde(with = "time::serde::rfc3339")]
    pub dead_lettered_at: OffsetDateTime,
    /// When it was last redriven or discarded.
    #[diesel(sql_type = Nullable<Timestamptz>)]
    #[serde(with = "time::serde::rfc3339::option")]
    pub settled_at: Option<OffsetDateTime>,
}

/// A dead letter with what it carried, masked.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct DeadLetterDetail {
    #[serde(flatten)]
    pub letter: DeadLetter,
    /// Its AMQP headers (the broker's `x-death` record included).
    #[schema(value_type = Object)]
    pub headers: Value,
    /// Its body, personal and card data masked (non-JSON: its text).
    #[schema(value_type = Object)]
    pub body: Value,
}

#[derive(QueryableByName)]
struct Stored {
    #[diesel(embed)]
    letter: DeadLetter,
    #[diesel(sql_type = Jsonb)]
    headers: Value,
    #[diesel(sql_type = Bytea)]
    body: Vec<u8>,
    #[diesel(sql_type = Nullable<Text>)]
    content_type: Option<String>,
}

pub(super) const COLUMNS: &str = "id, queue, message_id, routing_key, reason, subject, state, \
    times_dead_lettered, redrives, first_dead_lettered_at, dead_lettered_at, settled_at";

#[derive(QueryableByName)]
struct Open {
    #[diesel(sql_type = BigInt)]
    open: i64,
}

/// Refreshes `dead_letters_open{queue}`: the dead letters of `service`'s
/// `queue` nobody has redriven or discarded yet (what the `DeadLetters`
/// alert watches).
pub async fn record_open(pool: &PgPool, service: &str, queue: &str) {
    let counted = async {
        let mut conn = crate::db::connection(pool).await?;
        let row: Open = diesel::sql_query(format!(
            "SELECT count(*)::int8 AS open FROM {service}.dead_letters WHERE state = 'dead'"
        ))
        .get_result(&mut conn)
        .await?;
        Ok::<_, anyhow::Error>(row.open)
    }
    .await;
    match counted {
        #[allow(clippy::cast_precision_loss)]
        Ok(open) => {
            metrics::gauge!("dead_letters_open", "queue" => queue.to_owned()).set(open as f64)
        }
        Err(error) => {
            tracing::debug!(error.message = %format!("{error:#}"), "could not count dead letters")
        }
    }
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct DeadLetterQuery {
    /// `dead` (default), `redriven`, `discarded` or `all`.
    pub state: Option<String>,
    /// Only those whose reason contains this text.
    pub reason: Option<String>,
    /// Only this event type.
    #[serde(rename = "type")]
    #[param(rename = "type")]
    pub event_type: Option<String>,
    /// Only those naming this order.
    pub subject: Option<String>,
    /// Only those dead-lettered at least this many seconds ago.
    pub older_than_seconds: Option<i64>,
    /// At most this many, newest first (1–500, default 50).
    pub limit: Option<i64>,
}

/// Dead letters of this service's consumer, newest first.
#[utoipa::path(
    get, path = "/api/v1/ops/dead-letters", tag = "ops",
    params(DeadLetterQuery),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The dead letters that match, newest first", body = [DeadLetter]),
        (status = 400, description = "Invalid query (`validation_error`)", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not an operator (`forbidden`)", body = Problem, content_type = "application/problem+json"),
    )
)]
#[get("/dead-letters")]
pub async fn list_dead_letters(
    Authenticated(principal): Authenticated,
    console: web::Data<Console>,
    query: web::Query<DeadLetterQuery>,
) -> Result<HttpResponse, Problem> {
    console.operator(&principal)?;
    let limit = super::limit(query.limit)?;
    let state = super::state_filter(
        query.state.as_deref(),
        "dead",
        &["dead", "redriven", "discarded"],
    )?;
    let mut conn = console.connection().await?;
    let letters: Vec<DeadLetter> = diesel::sql_query(format!(
        "SELECT {COLUMNS} FROM {} \
         WHERE ($1::text IS NULL OR state = $1) \
           AND ($2::text IS NULL OR strpos(lower(reason), lower($2)) > 0) \
           AND ($3::text IS NULL OR routing_key = $3) \
           AND ($4::text IS NULL OR subject = $4) \
           AND ($5::int8 IS NULL OR dead_lettered_at <= now() - $5 * interval '1 second') \
         ORDER BY id DESC LIMIT $6",
        console.ops.table("dead_letters")
    ))
    .bind::<Nullable<Text>, _>(state)
    .bind::<Nullable<Text>, _>(query.reason.as_deref())
    .bind::<Nullable<Text>, _>(query.event_type.as_deref())
    .bind::<Nullable<Text>, _>(query.subject.as_deref())
    .bind::<Nullable<BigInt>, _>(query.older_than_seconds)
    .bind::<BigInt, _>(limit)
    .load(&mut conn)
    .await
    .map_err(unexpected)?;
    Ok(HttpResponse::Ok().json(letters))
}

async fn load(
    conn: &mut AsyncPgConnection,
    ops: &Ops,
    id: i64,
    lock: bool,
) -> Result<Stored, Problem> {
    let sql = format!(
        "SELECT {COLUMNS}, headers, body, content_type FROM {} WHERE id = $1{}",
        ops.table("dead_letters"),
        if lock { " FOR UPDATE" } else { "" }
    );
    super::find_one(conn, sql, id)
        .await?
        .ok_or_else(|| Problem::not_found(format!("no dead letter {id}")))
}

fn detail(stored: Stored) -> DeadLetterDetail {
    let mut headers = stored.headers;
    super::mask::json(&mut headers);
    DeadLetterDetail {
        letter: stored.letter,
        headers,
        body: super::mask::body(&stored.body),
    }
}

/// One dead letter: its headers and its body, masked.
#[utoipa::path(
    get, path = "/api/v1/ops/dead-letters/{id}", tag = "ops",
    params(("id" = i64, Path, description = "Dead letter id")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The dead letter, personal and card data masked", body = DeadLetterDetail),
        (status = 403, description = "Not an operator (`forbidden`)", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such dead letter (`not_found`)", body = Problem, content_type = "application/problem+json"),
    )
)]
#[get("/dead-letters/{id}")]
pub async fn find_dead_letter(
    Authenticated(principal): Authenticated,
    console: web::Data<Console>,
    id: web::Path<i64>,
) -> Result<HttpResponse, Problem> {
    console.operator(&principal)?;
    let mut conn = console.connection().await?;
    let stored = load(&mut conn, &console.ops, id.into_inner(), false).await?;
    Ok(HttpResponse::Ok().json(detail(stored)))
}

/// Republishes a dead letter to the queue it came from, once.
#[utoipa::path(
    post, path = "/api/v1/ops/dead-letters/{id}/redrive", tag = "ops",
    params(("id" = i64, Path, description = "Dead letter id")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Redriven (now, or already before and not back since)", body = DeadLetter),
        (status = 403, description = "Not an operator (`forbidden`)", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such dead letter (`not_found`)", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "It was discarded (`dead_letter_discarded`)", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "The broker did not confirm it (`broker_unavailable`); nothing changed", body = Problem, content_type = "application/problem+json"),
    )
)]
#[post("/dead-letters/{id}/redrive")]
pub async fn redrive_dead_letter(
    Authenticated(principal): Authenticated,
    console: web::Data<Console>,
    id: web::Path<i64>,
) -> Result<HttpResponse, Problem> {
    let operator = console.operator(&principal)?;
    settle(&console, &operator, id.into_inner(), Settle::Redrive).await
}

/// Discards a dead letter (it is kept, marked `discarded`, for the record).
#[utoipa::path(
    post, path = "/api/v1/ops/dead-letters/{id}/discard", tag = "ops",
    params(("id" = i64, Path, description = "Dead letter id")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Discarded (now or before)", body = DeadLetter),
        (status = 403, description = "Not an operator (`forbidden`)", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such dead letter (`not_found`)", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "It was redriven and is not back (`dead_letter_redriven`)", body = Problem, content_type = "application/problem+json"),
    )
)]
#[post("/dead-letters/{id}/discard")]
pub async fn discard_dead_letter(
    Authenticated(principal): Authenticated,
    console: web::Data<Console>,
    id: web::Path<i64>,
) -> Result<HttpResponse, Problem> {
    let operator = console.operator(&principal)?;
    settle(&console, &operator, id.into_inner(), Settle::Discard).await
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Settle {
    Redrive,
    Discard,
}

async fn settle(
    console: &Console,
    operator: &str,
    id: i64,
    how: Settle,
) -> Result<HttpResponse, Problem> {
    let ops = console.ops.clone();
    let mut conn = console.connection().await?;
    let operator = operator.to_owned();
    let settled = conn
        .transaction(
            async move |conn| -> Result<(DeadLetter, Option<Action>), Problem> {
                let stored = load(conn, &ops, id, true).await?;
                let (target_state, action) = match how {
                    Settle::Redrive => ("redriven", "dead_letter.redrive"),
                    Settle::Discard => ("discarded", "dead_letter.discard"),
                };
                match (stored.letter.state.as_str(), how) {
                    (state, _) if state == target_state => return Ok((stored.letter, None)),
                    ("discarded", Settle::Redrive) => {
                        return Err(Problem::new(
                            actix_web::http::StatusCode::CONFLICT,
                            "dead_letter_discarded",
                            "The dead letter was discarded",
                        ));
                    }
                    ("redriven", Settle::Discard) => {
                        return Err(Problem::new(
                            actix_web::http::StatusCode::CONFLICT,
                            "dead_letter_redriven",
                            "The dead letter was redriven and has not come back",
                        ));
                    }
                    _ => {}
                }
                if how == Settle::Redrive {
                    redrive::publish(&ops, &stored).await.map_err(|error| {
                    tracing::warn!(error.message = %format!("{error:#}"), "redrive not confirmed");
                    Problem::overloaded(
                        "broker_unavailable",
                        "the broker did not confirm the redrive; nothing changed, retry later",
                    )
                })?;
                }
                let letter: DeadLetter = diesel::sql_query(format!(
                    "UPDATE {} SET state = $2, settled_at = now(), \
                   redrives = redrives + CASE WHEN $2 = 'redriven' THEN 1 ELSE 0 END \
                 WHERE id = $1 RETURNING {COLUMNS}",
                    ops.table("dead_letters")
                ))
                .bind::<BigInt, _>(id)
                .bind::<Text, _>(target_state)
                .get_result(conn)
                .await
                .map_err(unexpected)?;
                let entry = Action {
                    operator,
                    action,
                    target: format!("dead_letter:{id}"),
                    detail: serde_json::json!({
                        "message_id": letter.message_id,
                        "type": letter.routing_key,
                        "queue": letter.queue,
                        "reason": letter.reason,
                    }),
                };
                audit::record(conn, ops.service, &entry)
                    .await
                    .map_err(unexpected)?;
                Ok((letter, Some(entry)))
            },
        )
        .await;
    let (letter, action) = settled?;
    if let Some(action) = action {
        audit::log(&action);
    }
    Ok(HttpResponse::Ok().json(letter))
}
