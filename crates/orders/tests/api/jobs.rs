//! The durable job layer, seen from outside: a charge payments never answers
//! is retried with back-off, then parked (kept, counted), never lost.

use std::time::Duration;

use diesel::QueryableByName;
use diesel::sql_types::{Integer, Nullable, Text};
use diesel_async::RunQueryDsl;
use serde_json::json;

use crate::helpers::{order_body, spawn_app_with, user};

#[derive(QueryableByName, Debug)]
struct JobRow {
    #[diesel(sql_type = Text)]
    kind: String,
    #[diesel(sql_type = Text)]
    state: String,
    #[diesel(sql_type = Integer)]
    attempts: i32,
    #[diesel(sql_type = Nullable<Text>)]
    last_error: Option<String>,
}

#[tokio::test]
async fn a_charge_that_keeps_failing_is_retried_then_parked_and_counted() {
    let app = spawn_app_with(|settings| {
        settings.jobs.poll_ms = 50;
        settings.jobs.base_backoff_ms = 10;
        settings.jobs.max_backoff_ms = 40;
        settings.jobs.max_attempts = 3;
    })
    .await;
    let mut body = order_body();
    body["payment"] = json!({"method": "card", "token": "tok_visa"});
    let placed = app.post_order(&user("alice"), &body).await;
    assert_eq!(placed.status(), 201);

    let mut conn = app.conn().await;
    let mut job = None;
    for _ in 0..100 {
        let rows: Vec<JobRow> =
            diesel::sql_query("SELECT kind, state, attempts, last_error FROM orders.jobs")
                .load(&mut conn)
                .await
                .unwrap();
        if <[JobRow]>::first(&rows).is_some_and(|row| row.state == "parked") {
            job = rows.into_iter().next();
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let job = job.expect("the job was parked");
    assert_eq!((job.kind.as_str(), job.attempts), ("pay", 3));
    assert!(
        job.last_error.unwrap().contains("payments unreachable"),
        "the last error is kept for an operator"
    );

    let metrics = app
        .client
        .get(app.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for outcome in ["retried", "parked"] {
        assert!(
            metrics.lines().any(|line| line.starts_with("jobs_total")
                && line.contains("kind=\"pay\"")
                && line.contains(&format!("outcome=\"{outcome}\""))),
            "jobs_total{{outcome={outcome}}} in:\n{metrics}"
        );
    }
}

#[derive(QueryableByName, Debug)]
struct Deferred {
    #[diesel(sql_type = Integer)]
    attempts: i32,
    #[diesel(sql_type = Nullable<Text>)]
    last_error: Option<String>,
    /// Seconds from now until the job may run again.
    #[diesel(sql_type = diesel::sql_types::Double)]
    waits: f64,
}

/// Payments overloaded answers `503` with `Retry-After`: the charge waits
/// as long as it was asked to (not the far shorter back-off), then goes
/// through once payments takes it.
#[tokio::test]
async fn a_charge_payments_asks_to_defer_waits_as_long_as_it_was_asked() {
    use wiremock::matchers::{method, path};
    use wiremock::{Mock, MockServer, ResponseTemplate};
    let payments = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/api/v1/payments"))
        .respond_with(
            ResponseTemplate::new(503)
                .insert_header("Retry-After", "30")
                .set_body_json(json!({"type": "overloaded", "status": 503})),
        )
        .up_to_n_times(1)
        .mount(&payments)
        .await;
    let url = payments.uri();
    let app = spawn_app_with(move |settings| {
        settings.payments.url = url;
        settings.jobs.poll_ms = 50;
        settings.jobs.base_backoff_ms = 10;
        settings.jobs.max_backoff_ms = 60_000;
    })
    .await;
    let mut body = order_body();
    body["payment"] = json!({"method": "card", "token": "tok_visa"});
    assert_eq!(app.post_order(&user("alice"), &body).await.status(), 201);

    let mut conn = app.conn().await;
    let mut deferred = None;
    for _ in 0..100 {
        let rows: Vec<Deferred> = diesel::sql_query(
            "SELECT attempts, last_error, extract(epoch FROM run_at - now())::float8 AS waits \
             FROM orders.jobs WHERE kind = 'pay' AND last_error IS NOT NULL",
        )
        .load(&mut conn)
        .await
        .unwrap();
        if let Some(row) = rows.into_iter().next() {
            deferred = Some(row);
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let deferred = deferred.expect("the charge was deferred");
    assert_eq!(deferred.attempts, 1);
    assert!(
        deferred
            .last_error
            .as_deref()
            .unwrap_or_default()
            .contains("503"),
        "{deferred:?}"
    );
    // Back-off alone would have waited at most 10 ms.
    assert!(
        deferred.waits > 25.0 && deferred.waits <= 30.0,
        "the job waits as long as payments asked: {deferred:?}"
    );
    assert_eq!(
        payments.received_requests().await.unwrap_or_default().len(),
        1
    );
}
