//! Payments' part of an order's story for the operators' console
//! (`GET /api/v1/ops/orders/{id}`, behind `payments.ops`): the events it
//! published about the order, its unfinished jobs and dead letters, and the
//! order's payments as they stand. Orders asks for it when it assembles the
//! whole story.

use actix_web::{HttpResponse, get, web};
use contracts::{
    ops::{ServiceStory, Step, StepKind},
    payment::PaymentData,
};
use diesel::{
    QueryableByName,
    sql_types::{Array, Nullable, Text, Timestamptz, Uuid as SqlUuid},
};
use diesel_async::RunQueryDsl;
use platform::{Problem, auth::Authenticated, ops::Console};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::service::{Actor, Payments};

#[derive(QueryableByName)]
struct Published {
    #[diesel(sql_type = Text)]
    event_type: String,
    /// The event's data as stored (`json` text).
    #[diesel(sql_type = Text)]
    data: String,
    #[diesel(sql_type = Nullable<Text>)]
    traceparent: Option<String>,
    #[diesel(sql_type = Timestamptz)]
    occurred_at: OffsetDateTime,
}

#[derive(QueryableByName)]
struct Key {
    #[diesel(sql_type = Text)]
    key: String,
}

fn summary(data: &serde_json::Value) -> String {
    let text = |name: &str| data.get(name).and_then(|v| v.as_str()).unwrap_or_default();
    let mut summary = format!(
        "payment {} {}, amount {} {}",
        text("id"),
        text("status"),
        text("amount"),
        text("currency")
    );
    for (name, label) in [
        ("captured_amount", "captured"),
        ("refunded_amount", "refunded"),
        ("failure_reason", "failure"),
    ] {
        if !text(name).is_empty() {
            summary.push_str(&format!(", {label} {}", text(name)));
        }
    }
    if let Some(refund) = data.get("refund") {
        let amount = refund
            .get("amount")
            .and_then(|v| v.as_str())
            .unwrap_or_default();
        summary.push_str(&format!("; this refund {amount}"));
    }
    summary
}

/// Payments' part of an order's story.
#[utoipa::path(
    get, path = "/api/v1/ops/orders/{id}", tag = "ops",
    params(("id" = Uuid, Path, description = "Order id")),
    security(("bearer" = ["payments.ops"])),
    responses(
        (status = 200, description = "What payments did about the order, in time order, and its payments", body = ServiceStory),
        (status = 403, description = "Not an operator (`forbidden`)", body = Problem, content_type = "application/problem+json"),
    )
)]
#[get("/orders/{id}")]
pub async fn order_story(
    Authenticated(principal): Authenticated,
    console: web::Data<Console>,
    payments: web::Data<Payments>,
    id: web::Path<Uuid>,
) -> Result<HttpResponse, Problem> {
    console.operator(&principal)?;
    let order_id = id.into_inner();
    let listed = payments
        .list(&Actor::service("ops"), Some(order_id), 100)
        .await
        .map_err(|error| Problem::internal(&anyhow::anyhow!("{error}")))?;
    let facts: Vec<PaymentData> = listed.iter().map(crate::service::payment_data).collect();
    let unexpected = |error: diesel::result::Error| Problem::internal(&error.into());
    let mut conn = platform::db::connection(&console.pool)
        .await
        .map_err(|error| Problem::internal(&error))?;
    let ids: Vec<Uuid> = facts.iter().map(|payment| payment.id).collect();
    let mut keys: Vec<String> = diesel::sql_query(
        "SELECT id::text AS key FROM payments.refunds WHERE payment_id = ANY($1)",
    )
    .bind::<Array<SqlUuid>, _>(&ids)
    .load::<Key>(&mut conn)
    .await
    .map_err(unexpected)?
    .into_iter()
    .map(|row| row.key)
    .collect();
    keys.extend(ids.iter().map(Uuid::to_string));
    let published: Vec<Published> = diesel::sql_query(
        "SELECT event_type, data::text AS data, traceparent, occurred_at FROM payments.outbox \
         WHERE subject = $1 ORDER BY position",
    )
    .bind::<Text, _>(order_id.to_string())
    .load(&mut conn)
    .await
    .map_err(unexpected)?;
    let mut steps: Vec<Step> = published
        .into_iter()
        .map(|event| Step {
            at: event.occurred_at,
            service: "payments".to_owned(),
            kind: StepKind::Event,
            summary: summary(&serde_json::from_str(&event.data).unwrap_or_default()),
            name: event.event_type,
            actor: None,
            trace_id: contracts::ops::trace_id(event.traceparent.as_deref()),
        })
        .collect();
    steps.extend(
        platform::ops::story::common_steps(&mut conn, &console.ops, &order_id.to_string(), &keys)
            .await
            .map_err(unexpected)?,
    );
    contracts::ops::in_time_order(&mut steps);
    Ok(HttpResponse::Ok().json(ServiceStory {
        service: "payments".to_owned(),
        steps,
        payments: facts,
    }))
}
