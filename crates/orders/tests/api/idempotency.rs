//! Idempotency-Key on POST /api/v1/orders.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{TestApp, order_body, problem, spawn_app, spawn_app_with, user};

async fn post(app: &TestApp, token: &str, key: &str, body: &Value) -> reqwest::Response {
    app.client
        .post(app.url("/api/v1/orders"))
        .bearer_auth(token)
        .header("Idempotency-Key", key)
        .json(body)
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn the_same_key_and_body_replay_the_first_answer_byte_for_byte() {
    let app = spawn_app().await;
    let token = user("alice");

    let first = post(&app, &token, "order-key-1", &order_body()).await;
    assert_eq!(first.status(), StatusCode::CREATED);
    assert!(first.headers().get("idempotent-replayed").is_none());
    let location = first.headers()["location"].clone();
    let first_body = first.bytes().await.unwrap();

    let again = post(&app, &token, "order-key-1", &order_body()).await;
    assert_eq!(again.status(), StatusCode::CREATED);
    assert_eq!(again.headers()["idempotent-replayed"], "true");
    assert_eq!(again.headers()["location"], location);
    assert_eq!(again.bytes().await.unwrap(), first_body);
    assert_eq!(app.event_count().await, 1, "one order");
}

#[tokio::test]
async fn the_same_key_with_another_body_is_a_422_and_writes_nothing() {
    let app = spawn_app().await;
    let token = user("alice");
    post(&app, &token, "order-key-2", &order_body()).await;
    let mut other = order_body();
    other["notes"] = json!("something else");
    problem(
        post(&app, &token, "order-key-2", &other).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "idempotency_key_reused",
    )
    .await;
    assert_eq!(app.event_count().await, 1);
}

#[tokio::test]
async fn concurrent_requests_with_one_key_place_one_order() {
    let app = spawn_app().await;
    let token = user("alice");
    let body = order_body();
    let responses =
        futures_util::future::join_all((0..8).map(|_| post(&app, &token, "order-key-3", &body)))
            .await;
    // Each duplicate either replays the first answer or, while the first is
    // still in flight, is told so (409 idempotency_in_flight, Retry-After).
    let mut bodies = Vec::new();
    for response in responses {
        match response.status() {
            StatusCode::CREATED => bodies.push(response.bytes().await.unwrap()),
            StatusCode::CONFLICT => {
                assert_eq!(response.headers()["retry-after"], "1");
                let problem: Value = response.json().await.unwrap();
                assert_eq!(problem["type"], "idempotency_in_flight");
            }
            other => panic!("unexpected {other}"),
        }
    }
    assert!(!bodies.is_empty());
    bodies.dedup();
    assert_eq!(bodies.len(), 1, "every answer is the same order");
    assert_eq!(app.event_count().await, 1);
    // Once done, a retry replays it.
    let retry = post(&app, &token, "order-key-3", &body).await;
    assert_eq!(retry.headers()["idempotent-replayed"], "true");
    assert_eq!(retry.bytes().await.unwrap(), bodies[0]);
}

#[tokio::test]
async fn a_key_is_bound_to_its_route_and_resource() {
    let app = spawn_app().await;
    let token = user("alice");
    let first: Value = post(&app, &token, "placing", &order_body())
        .await
        .json()
        .await
        .unwrap();
    let second: Value = post(&app, &token, "another", &order_body())
        .await
        .json()
        .await
        .unwrap();
    let line = json!({"product_id": "prod_9", "quantity": 1, "unit_price": "1.00"});
    let add = |order: &Value, key: &'static str| {
        app.client
            .post(format!(
                "{}/api/v1/orders/{}/items",
                app.address,
                order["id"].as_str().unwrap()
            ))
            .bearer_auth(&token)
            .header("Idempotency-Key", key)
            .json(&line)
            .send()
    };
    assert_eq!(
        add(&first, "add-1").await.unwrap().status(),
        StatusCode::CREATED
    );
    // The same key and body on another order is another request.
    problem(
        add(&second, "add-1").await.unwrap(),
        StatusCode::UNPROCESSABLE_ENTITY,
        "idempotency_key_reused",
    )
    .await;
    // And on another route.
    problem(
        add(&first, "placing").await.unwrap(),
        StatusCode::UNPROCESSABLE_ENTITY,
        "idempotency_key_reused",
    )
    .await;
    let untouched: Value = app
        .client
        .get(format!(
            "{}/api/v1/orders/{}",
            app.address,
            second["id"].as_str().unwrap()
        ))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(untouched["items"], second["items"]);
    assert_eq!(untouched["version"], 1);
}

#[tokio::test]
async fn keys_belong_to_their_caller() {
    let app = spawn_app().await;
    let alice: Value = post(&app, &user("alice"), "shared", &order_body())
        .await
        .json()
        .await
        .unwrap();
    let bob: Value = post(&app, &user("bob"), "shared", &order_body())
        .await
        .json()
        .await
        .unwrap();
    assert_ne!(alice["id"], bob["id"]);
    assert_eq!(bob["user_id"], "bob");
}

#[tokio::test]
async fn an_expired_key_places_a_new_order() {
    let app = spawn_app_with(|settings| settings.idempotency.ttl_seconds = 1).await;
    let token = user("alice");
    let first: Value = post(&app, &token, "short-lived", &order_body())
        .await
        .json()
        .await
        .unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(1_200)).await;
    let later = post(&app, &token, "short-lived", &order_body()).await;
    assert_eq!(later.status(), StatusCode::CREATED);
    assert!(later.headers().get("idempotent-replayed").is_none());
    let later: Value = later.json().await.unwrap();
    assert_ne!(later["id"], first["id"]);
}

#[tokio::test]
async fn a_malformed_key_is_a_400() {
    let app = spawn_app().await;
    let response = post(&app, &user("alice"), &"k".repeat(300), &order_body()).await;
    problem(response, StatusCode::BAD_REQUEST, "validation_error").await;
    assert_eq!(app.event_count().await, 0);
}
