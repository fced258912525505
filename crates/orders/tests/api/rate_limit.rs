//! Per-user rate limit on POST /api/v1/orders.

use reqwest::StatusCode;

use crate::helpers::{order_body, problem, spawn_app_with, user};

#[tokio::test]
async fn a_user_over_the_limit_gets_a_429_with_retry_after_and_others_do_not() {
    let app = spawn_app_with(|settings| {
        settings.rate_limit.enabled = true;
        settings.rate_limit.burst = 2;
        settings.rate_limit.replenish_every_ms = 60_000;
    })
    .await;
    let alice = user("alice");
    for _ in 0..2 {
        assert_eq!(
            app.post_order(&alice, &order_body()).await.status(),
            StatusCode::CREATED
        );
    }

    let limited = app.post_order(&alice, &order_body()).await;
    let retry_after: u64 = limited.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=60).contains(&retry_after), "{retry_after}");
    problem(limited, StatusCode::TOO_MANY_REQUESTS, "rate_limited").await;
    assert_eq!(app.event_count().await, 2, "nothing written");

    assert_eq!(
        app.post_order(&user("bob"), &order_body()).await.status(),
        StatusCode::CREATED
    );
    // Reading is not limited.
    assert_eq!(
        app.get(&alice, "/api/v1/orders").await.status(),
        StatusCode::OK
    );
}

#[tokio::test]
async fn the_allowance_recovers_over_time() {
    let app = spawn_app_with(|settings| {
        settings.rate_limit.enabled = true;
        settings.rate_limit.burst = 1;
        settings.rate_limit.replenish_every_ms = 400;
    })
    .await;
    let alice = user("alice");
    assert_eq!(
        app.post_order(&alice, &order_body()).await.status(),
        StatusCode::CREATED
    );
    assert_eq!(
        app.post_order(&alice, &order_body()).await.status(),
        StatusCode::TOO_MANY_REQUESTS
    );
    tokio::time::sleep(std::time::Duration::from_millis(450)).await;
    assert_eq!(
        app.post_order(&alice, &order_body()).await.status(),
        StatusCode::CREATED
    );
}

#[tokio::test]
async fn a_request_without_a_valid_token_is_a_401_not_a_slot() {
    let app = spawn_app_with(|settings| settings.rate_limit.enabled = true).await;
    let response = app.post_order("not-a-token", &order_body()).await;
    problem(response, StatusCode::UNAUTHORIZED, "unauthorized").await;
}

#[tokio::test]
async fn only_placing_orders_is_limited() {
    let app = spawn_app_with(|settings| {
        settings.rate_limit.enabled = true;
        settings.rate_limit.burst = 1;
        settings.rate_limit.replenish_every_ms = 60_000;
    })
    .await;
    let alice = user("alice");
    let id = app.create_order(&alice).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    for quantity in 1..=3 {
        let added = app
            .client
            .post(app.url(&format!("/api/v1/orders/{id}/items")))
            .bearer_auth(&alice)
            .json(&serde_json::json!({"product_id": format!("p{quantity}"), "quantity": quantity, "unit_price": "1.00"}))
            .send()
            .await
            .unwrap();
        assert_eq!(
            added.status(),
            StatusCode::CREATED,
            "adding lines is not limited"
        );
    }
    assert_eq!(
        app.post_order(&alice, &order_body()).await.status(),
        StatusCode::TOO_MANY_REQUESTS
    );
}
