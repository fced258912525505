//! Per-user rate limits on every write, by the endpoint a request reaches.

use reqwest::StatusCode;

use crate::helpers::{order_body, problem, spawn_app_with, user};

#[tokio::test]
async fn a_user_over_the_limit_gets_a_429_with_retry_after_and_others_do_not() {
    let app = spawn_app_with(|settings| {
        settings.rate_limit.enabled = true;
        settings.rate_limit.create.burst = 2;
        settings.rate_limit.create.replenish_every_ms = 60_000;
    })
    .await;
    let alice = user("alice");
    // Every answer of the limited route says what is left (RateLimit
    // header fields draft), so a client can pace itself.
    for remaining in ["1", "0"] {
        let created = app.post_order(&alice, &order_body()).await;
        assert_eq!(created.status(), StatusCode::CREATED);
        let header = |name: &str| created.headers()[name].to_str().unwrap().to_owned();
        assert_eq!(header("ratelimit-limit"), "2");
        assert_eq!(header("ratelimit-remaining"), remaining);
        assert_eq!(header("ratelimit-policy"), "2;w=120");
        let reset: u64 = header("ratelimit-reset").parse().unwrap();
        assert!((1..=120).contains(&reset), "{reset}");
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
    // Reading is not limited, and says nothing of limits.
    let read = app.get(&alice, "/api/v1/orders").await;
    assert_eq!(read.status(), StatusCode::OK);
    assert!(!read.headers().contains_key("ratelimit-remaining"));
}

#[tokio::test]
async fn the_allowance_recovers_over_time() {
    let app = spawn_app_with(|settings| {
        settings.rate_limit.enabled = true;
        settings.rate_limit.create.burst = 1;
        settings.rate_limit.create.replenish_every_ms = 400;
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
async fn each_kind_of_write_has_its_own_allowance() {
    let app = spawn_app_with(|settings| {
        settings.rate_limit.enabled = true;
        settings.rate_limit.create.burst = 5;
        settings.rate_limit.items.burst = 2;
        settings.rate_limit.items.replenish_every_ms = 60_000;
        settings.rate_limit.change.burst = 1;
        settings.rate_limit.change.replenish_every_ms = 60_000;
    })
    .await;
    let alice = user("alice");
    let id = app.create_order(&alice).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let add = |quantity: i64| {
        app.client
            .post(app.url(&format!("/api/v1/orders/{id}/items")))
            .bearer_auth(&alice)
            .json(&serde_json::json!({"product_id": format!("p{quantity}"), "quantity": quantity, "unit_price": "1.00"}))
            .send()
    };
    assert_eq!(add(1).await.unwrap().status(), StatusCode::CREATED);
    assert_eq!(add(2).await.unwrap().status(), StatusCode::CREATED);
    let limited = add(3).await.unwrap();
    for header in [
        "retry-after",
        "ratelimit-limit",
        "ratelimit-remaining",
        "ratelimit-reset",
        "ratelimit-policy",
    ] {
        assert!(limited.headers().contains_key(header), "{header}");
    }
    assert_eq!(limited.headers()["ratelimit-limit"], "2");
    let refused = problem(limited, StatusCode::TOO_MANY_REQUESTS, "rate_limited").await;
    assert_eq!(refused["limit_class"], "orders.items");
    // Other kinds of write still have their allowance; then theirs ends too.
    assert_eq!(
        app.post_order(&alice, &order_body()).await.status(),
        StatusCode::CREATED
    );
    assert_eq!(app.cancel(&alice, &id).await.status(), StatusCode::OK);
    let other = app.create_order(&alice).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(
        app.cancel(&alice, &other).await.status(),
        StatusCode::TOO_MANY_REQUESTS
    );
}

#[tokio::test]
async fn a_path_is_limited_like_the_endpoint_it_reaches_however_it_is_spelled() {
    let app = spawn_app_with(|settings| {
        settings.rate_limit.enabled = true;
        settings.rate_limit.create.burst = 1;
        settings.rate_limit.create.replenish_every_ms = 60_000;
    })
    .await;
    let alice = user("alice");
    let mut statuses = Vec::new();
    for path in [
        "/api/v1/orders",
        "/api/v1/%6Frders",
        "/api/v1/orders/",
        "/api/v1/%6f%72ders",
    ] {
        let response = app
            .client
            .post(app.url(path))
            .bearer_auth(&alice)
            .json(&order_body())
            .send()
            .await
            .unwrap();
        statuses.push((path, response.status()));
    }
    // The router decodes `%6F` to `o`: both spellings reach order
    // creation, and the second is limited like the first.
    assert_eq!(
        statuses,
        [
            ("/api/v1/orders", StatusCode::CREATED),
            ("/api/v1/%6Frders", StatusCode::TOO_MANY_REQUESTS),
            ("/api/v1/orders/", StatusCode::NOT_FOUND),
            ("/api/v1/%6f%72ders", StatusCode::TOO_MANY_REQUESTS),
        ]
    );
}
