//! A hostile client against payments: each attempt is refused with its
//! documented problem and changes nothing. (Card numbers in any field and
//! spelling: `card_numbers_are_refused_and_never_stored`; forged
//! `order.cancelled` through the broker: the orders flow tests' `hostile`.)

use reqwest::StatusCode;
use serde_json::json;
use test_support::tokens::TokenSpec;

use crate::helpers::{body, problem, spawn_app, spawn_app_with, token};

#[tokio::test]
async fn a_user_charging_too_often_is_limited_and_the_orders_service_is_not() {
    let app = spawn_app_with(
        |settings| {
            settings.rate_limit.enabled = true;
            settings.rate_limit.create.burst = 2;
            settings.rate_limit.create.replenish_every_ms = 60_000;
        },
        None,
    )
    .await;
    let mut statuses = Vec::new();
    for _ in 0..3 {
        let order = app.pending_order("rita").await;
        statuses.push(
            app.pay(&token("rita"), &body(order, "tok_visa"))
                .await
                .status(),
        );
    }
    assert_eq!(
        statuses,
        [
            StatusCode::CREATED,
            StatusCode::CREATED,
            StatusCode::TOO_MANY_REQUESTS
        ]
    );
    let service = TokenSpec::new(
        "payments",
        "svc-orders",
        &["payments.write", "payments.admin"],
    )
    .sign();
    for _ in 0..3 {
        let order = app.pending_order("rita").await;
        let mut on_behalf = body(order, "tok_visa");
        on_behalf["user_id"] = json!("rita");
        assert_eq!(
            app.pay(&service, &on_behalf).await.status(),
            StatusCode::CREATED
        );
    }
}

#[tokio::test]
async fn old_inbox_and_published_outbox_rows_are_pruned_and_unpublished_ones_kept() {
    use diesel_async::RunQueryDsl;
    let app = spawn_app().await;
    let mut conn = app.db.connect().await.unwrap();
    diesel::sql_query(
        "INSERT INTO payments.inbox (event_id, event_type, consumed_at) \
         SELECT gen_random_uuid(), 'order.cancelled', now() - interval '30 days' \
         FROM generate_series(1, 50)",
    )
    .execute(&mut conn)
    .await
    .unwrap();
    for published in ["now() - interval '30 days'", "NULL", "now()"] {
        diesel::sql_query(format!(
            "INSERT INTO payments.outbox (id, subject, event_type, data, occurred_at, published_at) \
             VALUES (gen_random_uuid(), 'o', 'payment.failed', '{{}}', now() - interval '30 days', {published})"
        ))
        .execute(&mut conn)
        .await
        .unwrap();
    }
    let settings = payments::config::Settings::defaults().unwrap();
    let rules = payments::app::retention_rules(&settings.retention);
    let deleted = platform::retention::prune(&mut conn, &rules).await.unwrap();
    assert_eq!(
        deleted,
        [
            ("payments.inbox", 50),
            ("payments.jobs", 0),
            ("payments.dead_letters", 0),
            ("payments.outbox", 1)
        ]
    );
}

#[tokio::test]
async fn control_characters_and_odd_subjects_are_4xx_never_500() {
    let app = spawn_app().await;
    let order = app.pending_order("alice").await;
    let mut request = body(order, "tok_visa");
    request["method"] = json!("card\u{0}x");
    let refused = problem(
        app.pay(&token("alice"), &request).await,
        StatusCode::BAD_REQUEST,
        "validation_error",
    )
    .await;
    assert_eq!(refused["errors"][0]["field"], "body");
    for subject in ["nul\u{0}x", "two words"] {
        let odd = TokenSpec::new("payments", subject, &["payments.read", "payments.write"]).sign();
        problem(
            app.get(&odd, "/api/v1/payments").await,
            StatusCode::UNAUTHORIZED,
            "unauthorized",
        )
        .await;
    }
    problem(
        app.get(
            &token("alice"),
            "/api/v1/payments?order_id=x&card=4242424242424242",
        )
        .await,
        StatusCode::BAD_REQUEST,
        "card_data_refused",
    )
    .await;
    assert_eq!(app.counts().await, (0, 0));
}

#[tokio::test]
async fn a_stalled_body_is_answered_408_within_its_deadline() {
    let app = spawn_app_with(|settings| settings.http.body_timeout_ms = 300, None).await;
    let answer =
        test_support::http::stall_a_body(&app.address, "/api/v1/payments", &token("alice")).await;
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains("request_timeout"), "{answer}");
}

/// The shared hostile-input suite (`test_support::hostile`): control
/// characters and card numbers in every body string, path segment and
/// query value of every endpoint are refused `400`, in bounded time, and
/// nothing is written.
#[tokio::test]
async fn every_endpoint_refuses_hostile_text_anywhere_in_the_request() {
    use reqwest::Method;
    use test_support::hostile::{Endpoint, assert_all_refused};
    let app = spawn_app().await;
    let order = app.pending_order("ops").await;
    let paid = app
        .pay(&crate::helpers::admin(), &body(order, "tok_visa"))
        .await;
    assert_eq!(paid.status(), StatusCode::CREATED);
    let payment: serde_json::Value = paid.json().await.unwrap();
    let id = payment["id"].as_str().unwrap();
    let counts = app.counts().await;
    let payments = "/api/v1/payments".to_owned();
    let one = format!("{payments}/{id}");
    let other = app.pending_order("ops").await;
    let endpoints = [
        Endpoint::new(Method::POST, &payments).body(body(other, "tok_visa")),
        Endpoint::new(Method::GET, &payments).query("order_id", &order.to_string()),
        Endpoint::new(Method::GET, &one),
        Endpoint::new(Method::POST, format!("{one}/capture")).body(json!({"amount": "1.00"})),
        Endpoint::new(Method::POST, format!("{one}/void")),
        Endpoint::new(Method::POST, format!("{one}/refunds"))
            .body(json!({"amount": "1.00", "reason": "damaged"})),
        Endpoint::new(Method::GET, format!("{one}/refunds")),
        Endpoint::new(Method::POST, format!("{one}/refund")).body(json!({"reason": "damaged"})),
    ];
    let sent = assert_all_refused(&app.address, &crate::helpers::admin(), &endpoints).await;
    assert!(sent > 100, "only {sent} cases");
    // The operators' console (its own scope).
    let ops = "/api/v1/ops";
    let console = [
        Endpoint::new(Method::GET, format!("{ops}/dead-letters"))
            .query("reason", "limit")
            .query("type", "order.cancelled")
            .query("subject", &order.to_string()),
        Endpoint::new(Method::GET, format!("{ops}/dead-letters/1")),
        Endpoint::new(Method::POST, format!("{ops}/dead-letters/1/redrive")),
        Endpoint::new(Method::POST, format!("{ops}/dead-letters/1/discard")),
        Endpoint::new(Method::GET, format!("{ops}/jobs")).query("kind", "refund"),
        Endpoint::new(Method::GET, format!("{ops}/jobs/1")),
        Endpoint::new(Method::POST, format!("{ops}/jobs/1/retry")),
        Endpoint::new(Method::POST, format!("{ops}/jobs/1/discard")),
        Endpoint::new(Method::GET, format!("{ops}/outbox")),
        Endpoint::new(Method::GET, format!("{ops}/audit")).query("operator", "oncall"),
        Endpoint::new(Method::GET, format!("{ops}/orders/{order}")),
    ];
    let operator =
        test_support::tokens::TokenSpec::new("payments", "oncall", &["payments.ops"]).sign();
    let sent = assert_all_refused(&app.address, &operator, &console).await;
    assert!(sent > 80, "only {sent} cases");
    assert_eq!(app.counts().await, counts, "a refused request wrote");
}
