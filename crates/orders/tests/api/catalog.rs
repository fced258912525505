//! Catalogue prices and stock reservations (an HTTP test double speaking
//! `contracts/dependencies/catalog-service.yaml`).

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};
use wiremock::{
    Mock, MockServer, Request, ResponseTemplate,
    matchers::{method, path, path_regex},
};

use crate::helpers::{TestApp, order_body, problem, spawn_app_with, user};

async fn catalog() -> MockServer {
    let server = MockServer::start().await;
    for (id, name, price) in [
        ("prod_123", "T-shirt", "25.00"),
        ("prod_456", "Mug", "7.50"),
    ] {
        Mock::given(method("GET"))
            .and(path(format!("/api/v1/products/{id}")))
            .respond_with(ResponseTemplate::new(200).set_body_json(json!({
                "id": id, "name": name, "sku": format!("SKU-{id}"), "price": price, "currency": "USD"
            })))
            .mount(&server)
            .await;
    }
    Mock::given(method("GET"))
        .and(path_regex("^/api/v1/products/.*$"))
        .respond_with(ResponseTemplate::new(404))
        .mount(&server)
        .await;
    server
}

async fn reserve_ok(server: &MockServer) {
    Mock::given(method("PUT"))
        .and(path_regex("^/api/v1/reservations/[0-9a-f-]+$"))
        .respond_with(ResponseTemplate::new(200))
        .mount(server)
        .await;
}

async fn release_ok(server: &MockServer) {
    Mock::given(method("DELETE"))
        .and(path_regex("^/api/v1/reservations/[0-9a-f-]+$"))
        .respond_with(ResponseTemplate::new(204))
        .mount(server)
        .await;
}

async fn app_with(server: &MockServer) -> TestApp {
    let url = server.uri();
    spawn_app_with(move |settings| {
        settings.catalog.url = Some(url);
        settings.catalog.timeout_ms = 500;
    })
    .await
}

async fn calls(server: &MockServer, verb: &str) -> Vec<Request> {
    server
        .received_requests()
        .await
        .unwrap()
        .into_iter()
        .filter(|r| r.method.as_str() == verb)
        .collect()
}

async fn wait_for_calls(server: &MockServer, verb: &str, count: usize) -> Vec<Request> {
    for _ in 0..50 {
        let made = calls(server, verb).await;
        if made.len() >= count {
            return made;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    calls(server, verb).await
}

#[tokio::test]
async fn prices_names_and_skus_come_from_the_catalogue_and_stock_is_reserved() {
    let server = catalog().await;
    reserve_ok(&server).await;
    let app = app_with(&server).await;
    let mut body = order_body(); // claims 29.99 and 5 for the two products
    body["items"][0]["unit_price"] = json!("0.01");

    let response = app.post_order(&user("alice"), &body).await;

    assert_eq!(response.status(), StatusCode::CREATED);
    let order: Value = response.json().await.unwrap();
    assert_eq!(
        order["items"][0]["unit_price"], "25.00",
        "the client's price is ignored"
    );
    assert_eq!(order["items"][0]["name"], "T-shirt");
    assert_eq!(order["items"][0]["sku"], "SKU-prod_123");
    assert_eq!(order["items"][1]["unit_price"], "7.50");
    assert_eq!(order["total"], "57.50");
    let reservations = calls(&server, "PUT").await;
    assert_eq!(reservations.len(), 1);
    assert!(
        reservations[0]
            .url
            .path()
            .ends_with(order["id"].as_str().unwrap()),
        "keyed by the order id"
    );
    let reserved: Value = serde_json::from_slice(&reservations[0].body).unwrap();
    assert_eq!(
        reserved["items"],
        json!([{"product_id": "prod_123", "quantity": 2}, {"product_id": "prod_456", "quantity": 1}])
    );
}

#[tokio::test]
async fn an_unknown_product_is_a_400_naming_it_and_nothing_is_reserved_or_written() {
    let server = catalog().await;
    reserve_ok(&server).await;
    let app = app_with(&server).await;
    let mut body = order_body();
    body["items"][1]["product_id"] = json!("prod_ghost");

    let response = app.post_order(&user("alice"), &body).await;

    let problem = problem(response, StatusCode::BAD_REQUEST, "product_not_found").await;
    assert!(problem["detail"].as_str().unwrap().contains("prod_ghost"));
    assert_eq!(problem["errors"][0]["field"], "items[1].product_id");
    assert!(calls(&server, "PUT").await.is_empty());
    assert_eq!(app.event_count().await, 0);
}

#[tokio::test]
async fn insufficient_stock_is_a_409_with_requested_and_available_quantities() {
    let server = catalog().await;
    Mock::given(method("PUT"))
        .respond_with(ResponseTemplate::new(409).set_body_json(json!({
            "items": [{"product_id": "prod_123", "requested": 2, "available": 1}]
        })))
        .mount(&server)
        .await;
    let app = app_with(&server).await;

    let response = app.post_order(&user("alice"), &order_body()).await;

    let problem = problem(response, StatusCode::CONFLICT, "insufficient_stock").await;
    assert_eq!(
        problem["items"],
        json!([{"product_id": "prod_123", "requested": 2, "available": 1}])
    );
    assert_eq!(app.event_count().await, 0);
}

#[tokio::test]
async fn cancelling_releases_the_reservation_once() {
    let server = catalog().await;
    reserve_ok(&server).await;
    release_ok(&server).await;
    let app = app_with(&server).await;
    let owner = user("alice");
    let id = app.create_order(&owner).await["id"]
        .as_str()
        .unwrap()
        .to_owned();

    assert_eq!(app.cancel(&owner, &id).await.status(), StatusCode::OK);
    assert_eq!(
        app.cancel(&owner, &id).await.status(),
        StatusCode::OK,
        "cancelling again changes nothing"
    );

    let releases = wait_for_calls(&server, "DELETE", 1).await;
    tokio::time::sleep(Duration::from_millis(700)).await;
    let releases_later = calls(&server, "DELETE").await;
    assert_eq!(releases.len(), 1);
    assert_eq!(releases_later.len(), 1, "never released twice");
    assert!(releases[0].url.path().ends_with(&id));
}

#[tokio::test]
async fn a_failed_release_is_retried_until_it_succeeds() {
    let server = catalog().await;
    reserve_ok(&server).await;
    Mock::given(method("DELETE"))
        .respond_with(ResponseTemplate::new(503))
        .up_to_n_times(3) // the first attempt (with its retries) fails
        .mount(&server)
        .await;
    release_ok(&server).await;
    let app = spawn_app_with({
        let url = server.uri();
        move |settings| {
            settings.catalog.url = Some(url);
            settings.catalog.retries = 2;
        }
    })
    .await;
    let owner = user("alice");
    let id = app.create_order(&owner).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    app.cancel(&owner, &id).await;

    let releases = wait_for_calls(&server, "DELETE", 4).await;
    assert_eq!(releases.len(), 4, "3 failed attempts, then one that worked");
}

#[tokio::test]
async fn when_placing_fails_after_reserving_the_reservation_is_released() {
    let server = catalog().await;
    reserve_ok(&server).await;
    release_ok(&server).await;
    let app = app_with(&server).await;
    let mut body = order_body();
    body["shipping_method"] = json!("teleport"); // refused after stock was reserved

    let response = app.post_order(&user("alice"), &body).await;

    problem(response, StatusCode::BAD_REQUEST, "validation_error").await;
    let reserved = calls(&server, "PUT").await;
    let released = wait_for_calls(&server, "DELETE", 1).await;
    assert_eq!(reserved.len(), 1);
    assert_eq!(released.len(), 1);
    assert_eq!(
        reserved[0].url.path(),
        released[0].url.path(),
        "the same reservation"
    );
    assert_eq!(app.event_count().await, 0);
}

#[tokio::test]
async fn a_catalogue_that_does_not_answer_is_a_503() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(500))
        .mount(&server)
        .await;
    let app = app_with(&server).await;
    let response = app.post_order(&user("alice"), &order_body()).await;
    let body = problem(
        response,
        StatusCode::SERVICE_UNAVAILABLE,
        "dependency_unavailable",
    )
    .await;
    assert_eq!(body["title"], "Unable to check the catalogue");
    assert_eq!(app.event_count().await, 0);
}

#[tokio::test]
async fn without_a_catalogue_a_price_is_required() {
    let app = spawn_app_with(|_| {}).await;
    let mut body = order_body();
    body["items"][0]
        .as_object_mut()
        .unwrap()
        .remove("unit_price");
    let response = app.post_order(&user("alice"), &body).await;
    let problem = problem(response, StatusCode::BAD_REQUEST, "validation_error").await;
    assert_eq!(problem["errors"][0]["field"], "items[0].unit_price");
}

#[tokio::test]
async fn an_order_left_unpaid_releases_its_stock_when_it_expires() {
    let server = catalog().await;
    reserve_ok(&server).await;
    release_ok(&server).await;
    let app = spawn_app_with({
        let url = server.uri();
        move |settings| {
            settings.catalog.url = Some(url);
            settings.unpaid.cancel_after_seconds = 1;
            settings.unpaid.sweep_every_ms = 200;
        }
    })
    .await;
    let id = app.create_order(&user("alice")).await["id"]
        .as_str()
        .unwrap()
        .to_owned();

    let releases = wait_for_calls(&server, "DELETE", 1).await;

    assert_eq!(releases.len(), 1);
    assert!(releases[0].url.path().ends_with(&id));
    let order: Value = app
        .get(&user("alice"), &format!("/api/v1/orders/{id}"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(order["cancellation_reason"], "payment_timeout");
}

#[tokio::test]
async fn a_retry_after_taking_the_last_unit_replays_the_order() {
    // The first reservation takes the last unit; any later one finds none.
    let server = catalog().await;
    Mock::given(method("PUT"))
        .and(path_regex("^/api/v1/reservations/[0-9a-f-]+$"))
        .respond_with(ResponseTemplate::new(200))
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&server)
        .await;
    Mock::given(method("PUT"))
        .and(path_regex("^/api/v1/reservations/[0-9a-f-]+$"))
        .respond_with(ResponseTemplate::new(409).set_body_json(json!({
            "shortages": [{"product_id": "prod_123", "requested": 2, "available": 0}]
        })))
        .mount(&server)
        .await;
    let app = app_with(&server).await;
    let send = || {
        app.client
            .post(app.url("/api/v1/orders"))
            .bearer_auth(user("alice"))
            .header("Idempotency-Key", "last-unit")
            .json(&order_body())
            .send()
    };
    let first = send().await.unwrap();
    assert_eq!(first.status(), StatusCode::CREATED);
    let first = first.bytes().await.unwrap();

    // The client did not see the answer and retries: its order, not a 409,
    // and neither the stock nor anything else is asked again.
    let retry = send().await.unwrap();
    assert_eq!(retry.status(), StatusCode::CREATED);
    assert_eq!(retry.headers()["idempotent-replayed"], "true");
    assert_eq!(retry.bytes().await.unwrap(), first);
    assert_eq!(calls(&server, "PUT").await.len(), 1);
    assert_eq!(app.event_count().await, 1);
}

#[tokio::test]
async fn a_received_return_gives_its_units_back_to_the_catalogue() {
    let server = catalog().await;
    reserve_ok(&server).await;
    release_ok(&server).await;
    let app = app_with(&server).await;
    let order = app.create_unpaid_order(&user("alice")).await;
    let id = order["id"].as_str().unwrap();
    for status in ["paid", "shipped", "delivered"] {
        assert_eq!(
            app.patch_status(&crate::helpers::admin(), id, status)
                .await
                .status(),
            StatusCode::OK
        );
    }
    let return_lines = |lines: Value| {
        let app = &app;
        async move {
            let requested: Value = app
                .client
                .post(app.url(&format!("/api/v1/orders/{id}/returns")))
                .bearer_auth(user("alice"))
                .json(&json!({"items": lines, "reason": "too small"}))
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            let return_id = requested["returns"].as_array().unwrap().last().unwrap()["id"]
                .as_str()
                .unwrap()
                .to_owned();
            let received = app
                .client
                .post(app.url(&format!("/api/v1/orders/{id}/returns/{return_id}/receive")))
                .bearer_auth(crate::helpers::admin())
                .send()
                .await
                .unwrap();
            assert_eq!(received.status(), StatusCode::OK);
        }
    };
    let (shirt, mug) = (
        order["items"][0]["id"].clone(),
        order["items"][1]["id"].clone(),
    );
    // One T-shirt of two back: the reservation keeps one.
    return_lines(json!([{"item_id": shirt, "quantity": 1}])).await;
    let reservations = wait_for_calls(&server, "PUT", 2).await;
    let reserved: Value = serde_json::from_slice(&reservations[1].body).unwrap();
    assert_eq!(
        reserved["items"],
        json!([{"product_id": "prod_123", "quantity": 1}, {"product_id": "prod_456", "quantity": 1}])
    );
    // Everything else back: the reservation is released.
    return_lines(json!([{"item_id": shirt, "quantity": 1}, {"item_id": mug, "quantity": 1}])).await;
    let releases = wait_for_calls(&server, "DELETE", 1).await;
    assert!(releases[0].url.path().ends_with(id));
}
