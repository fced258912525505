//! Overload is answered, never suffered: past `http.max_in_flight` a
//! request is `503 overloaded` at once; a database that cannot be reached
//! in time is `503 service_unavailable`; both with `Retry-After`, never a
//! `500`, and the service answers normally once the pressure is gone.

use std::time::Duration;

use diesel_async::SimpleAsyncConnection;
use reqwest::StatusCode;

use crate::helpers::{problem, spawn_app_with, user};

#[tokio::test]
async fn past_its_in_flight_limit_a_request_is_shed_with_503_and_retry_after() {
    let app = spawn_app_with(|settings| {
        settings.http.max_in_flight = 1;
        settings.http.body_timeout_ms = 3_000;
    })
    .await;
    let token = user("alice");
    // One request holds the only permit: its body never finishes arriving.
    let address = app.address.clone();
    let stalled = {
        let token = token.clone();
        tokio::spawn(async move {
            test_support::http::stall_a_body(&address, "/api/v1/orders", &token).await
        })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    let shed = app.get(&token, "/api/v1/orders").await;
    assert_eq!(
        shed.headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok()),
        Some("1")
    );
    problem(shed, StatusCode::SERVICE_UNAVAILABLE, "overloaded").await;
    // Operators still see the service.
    let health = app.client.get(app.url("/health")).send().await.unwrap();
    assert_eq!(health.status(), StatusCode::OK);
    // The stalled request ends (408) and frees its permit.
    assert!(stalled.await.unwrap().contains("408"));
    assert_eq!(
        app.get(&token, "/api/v1/orders").await.status(),
        StatusCode::OK
    );
}

#[tokio::test]
async fn a_database_out_of_reach_is_a_503_with_retry_after_never_a_500() {
    let app = spawn_app_with(|settings| {
        settings.http.workers = 1;
        settings.database.pool_size = 1;
        settings.database.acquire_timeout_ms = 200;
    })
    .await;
    let token = user("alice");
    let order = app.create_order(&token).await;
    let path = format!("/api/v1/orders/{}", order["id"].as_str().unwrap());
    // A migration-like lock makes the first read wait, holding the worker's
    // only connection; the second cannot have one in time.
    let mut locker = app.conn().await;
    locker
        .batch_execute("BEGIN; LOCK TABLE orders.orders IN ACCESS EXCLUSIVE MODE")
        .await
        .unwrap();
    let waiting = {
        let (client, url, token) = (app.client.clone(), app.url(&path), token.clone());
        tokio::spawn(async move {
            client
                .get(url)
                .bearer_auth(token)
                .send()
                .await
                .unwrap()
                .status()
        })
    };
    tokio::time::sleep(Duration::from_millis(200)).await;
    let refused = app.get(&token, &path).await;
    assert_eq!(
        refused
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok()),
        Some("1")
    );
    problem(
        refused,
        StatusCode::SERVICE_UNAVAILABLE,
        "service_unavailable",
    )
    .await;
    locker.batch_execute("ROLLBACK").await.unwrap();
    assert_eq!(waiting.await.unwrap(), StatusCode::OK);
    assert_eq!(app.get(&token, &path).await.status(), StatusCode::OK);
}
