use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use orders::store::schema::events;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{admin, order_body, spawn_app, spawn_app_with, user};

#[tokio::test]
async fn creating_an_order_answers_201_with_location_and_server_computed_totals() {
    // Arrange
    let app = spawn_app().await;

    // Act
    let response = app.post_order(&user("usr_abc123"), &order_body()).await;

    // Assert
    assert_eq!(response.status(), StatusCode::CREATED);
    let location = response.headers()["location"].to_str().unwrap().to_owned();
    assert_eq!(response.headers()["etag"], "\"1\"");
    let order: Value = response.json().await.unwrap();
    assert_eq!(
        location,
        format!("/api/v1/orders/{}", order["id"].as_str().unwrap())
    );
    assert_eq!(order["user_id"], "usr_abc123");
    assert_eq!(order["status"], "pending");
    assert_eq!(order["payment_status"], "pending");
    assert_eq!(order["currency"], "USD");
    assert_eq!(order["items"][0]["subtotal"], "59.98");
    assert_eq!(order["items"][1]["unit_price"], "5.00");
    assert_eq!(order["subtotal"], "64.98");
    assert_eq!(order["total"], "64.98");
    assert_eq!(order["payment_method"], "card");
    assert_eq!(order["version"], 1);
    assert!(order["order_number"].as_str().unwrap().starts_with("ORD-"));
    let mut billing = order["billing_address"].clone();
    billing["address_type"] = json!("SHIPPING");
    assert_eq!(
        billing, order["shipping_address"],
        "billing defaults to shipping"
    );
    assert_eq!(order["billing_address"]["address_type"], "BILLING");
    assert!(
        !order.to_string().contains("tok_visa"),
        "the payment token is not echoed"
    );
}

#[tokio::test]
async fn a_created_order_reads_back_identically_by_location_and_by_order_number() {
    let app = spawn_app().await;
    let token = user("usr_abc123");
    let created = app.create_order(&token).await;

    let by_id: Value = app
        .get(
            &token,
            &format!("/api/v1/orders/{}", created["id"].as_str().unwrap()),
        )
        .await
        .json()
        .await
        .unwrap();
    let by_number: Value = app
        .get(
            &token,
            &format!(
                "/api/v1/orders/{}",
                created["order_number"].as_str().unwrap()
            ),
        )
        .await
        .json()
        .await
        .unwrap();

    assert_eq!(by_id, created);
    assert_eq!(by_number, created);
}

#[tokio::test]
async fn creating_an_order_appends_order_created_to_the_event_store_unpublished() {
    // No broker to publish to, so the row is read before any relay could
    // mark it (with one, the relay sometimes won that race).
    let app = spawn_app_with(|settings| {
        settings.amqp.url = secrecy::SecretString::from("amqp://guest:guest@127.0.0.1:9/%2f");
    })
    .await;
    let created = app.create_order(&user("usr_abc123")).await;

    let rows: Vec<(i32, String, Value, Option<String>, bool)> = events::table
        .select((
            events::sequence,
            events::event_type,
            events::snapshot,
            events::actor,
            events::published_at.is_null(),
        ))
        .load(&mut app.conn().await)
        .await
        .unwrap();

    assert_eq!(rows.len(), 1);
    let (sequence, event_type, snapshot, actor, unpublished) = &rows[0];
    assert_eq!((*sequence, event_type.as_str()), (1, "order.created"));
    // The event's data is the order's state without its personal fields
    // (sealed at rest, never published).
    let mut public = created.clone();
    for personal in [
        "shipping_address",
        "billing_address",
        "notes",
        "cancellation_reason",
    ] {
        public.as_object_mut().unwrap().remove(personal);
    }
    assert!(!created["shipping_address"].is_null());
    assert_eq!(
        snapshot, &public,
        "the event's data is the order state, personal fields aside"
    );
    assert_eq!(actor.as_deref(), Some("usr_abc123"));
    assert!(unpublished, "the relay publishes it later");
}

#[tokio::test]
async fn an_admin_may_place_an_order_for_another_user_but_a_user_may_not() {
    let app = spawn_app().await;
    let mut body = order_body();
    body["user_id"] = json!("usr_someone_else");

    let by_admin = app.post_order(&admin(), &body).await;
    assert_eq!(by_admin.status(), StatusCode::CREATED);
    let order: Value = by_admin.json().await.unwrap();
    assert_eq!(order["user_id"], "usr_someone_else");

    let by_user = app.post_order(&user("usr_abc123"), &body).await;
    crate::helpers::problem(by_user, StatusCode::FORBIDDEN, "forbidden").await;
    assert_eq!(app.event_count().await, 1);
}

#[tokio::test]
async fn order_numbers_are_unique_under_concurrent_creation() {
    let app = spawn_app().await;
    let token = user("usr_abc123");

    let orders = futures_util::future::join_all((0..40).map(|_| app.create_order(&token))).await;

    let mut numbers: Vec<&str> = orders
        .iter()
        .map(|o| o["order_number"].as_str().unwrap())
        .collect();
    numbers.sort_unstable();
    numbers.dedup();
    assert_eq!(numbers.len(), 40);
}

#[tokio::test]
async fn amounts_respect_the_currencys_minor_unit() {
    let app = spawn_app().await;
    let mut body = order_body();
    body["currency"] = json!("JPY");
    body["items"] = json!([{"product_id": "prod_1", "quantity": 3, "unit_price": "1500"}]);

    let response = app.post_order(&user("usr_abc123"), &body).await;

    assert_eq!(response.status(), StatusCode::CREATED);
    let order: Value = response.json().await.unwrap();
    assert_eq!(order["total"], "4500");
}

#[tokio::test]
async fn totals_add_tax_and_the_shipping_fee_of_the_method() {
    let app = spawn_app_with(|settings| {
        settings.pricing.tax_rate_percent = "8.25".into();
    })
    .await;
    let mut body = order_body();
    body["shipping_method"] = json!("express");

    let order: Value = app
        .post_order(&user("usr_abc123"), &body)
        .await
        .json()
        .await
        .unwrap();

    // 64.98 + 8.25% tax (5.36085 → 5.36) + 15.00 express shipping
    assert_eq!(order["subtotal"], "64.98");
    assert_eq!(order["discount"], "0.00");
    assert_eq!(order["tax"], "5.36");
    assert_eq!(order["shipping"], "15.00");
    assert_eq!(order["total"], "85.34");
    let id = order["id"].as_str().unwrap();
    let fetched: Value = app
        .get(&user("usr_abc123"), &format!("/api/v1/orders/{id}"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(fetched, order, "the projection keeps the same totals");
}

#[tokio::test]
async fn an_unknown_shipping_method_or_one_not_offered_in_the_currency_is_refused() {
    let app = spawn_app().await;
    for (method, currency, unit_price) in [("teleport", "USD", "1.00"), ("express", "JPY", "100")] {
        let mut body = order_body();
        body["shipping_method"] = json!(method);
        body["currency"] = json!(currency);
        body["items"] = json!([{"product_id": "p1", "quantity": 1, "unit_price": unit_price}]);
        let response = app.post_order(&user("usr_abc123"), &body).await;
        let problem =
            crate::helpers::problem(response, StatusCode::BAD_REQUEST, "validation_error").await;
        assert_eq!(
            crate::helpers::fields(&problem),
            vec!["shipping_method".to_owned()],
            "{method} {currency}"
        );
    }
    assert_eq!(app.event_count().await, 0);
}
