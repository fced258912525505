//! Every input form the source documents use, through the real API (without
//! a catalogue: client prices; `source_documents` runs them with one).

use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{TestApp, address, admin, fields, order_body, problem, spawn_app, user};

async fn post_text(app: &TestApp, token: &str, body: &str) -> reqwest::Response {
    app.client
        .post(app.url("/api/v1/orders"))
        .bearer_auth(token)
        .header("content-type", "application/json")
        .body(body.to_owned())
        .send()
        .await
        .expect("request sent")
}

#[tokio::test]
async fn money_is_read_exactly_from_a_numbers_text() {
    let app = spawn_app().await;
    let token = user("usr_numbers");
    // The same amounts as decimal strings, numbers and exponents.
    for (price, total) in [
        ("29.99", "59.98"),
        ("\"29.99\"", "59.98"),
        ("2.999e1", "59.98"),
        ("2999E-2", "59.98"),
        ("0.1", "0.20"),
        ("1e2", "200.00"),
        ("29.990", "59.98"),
    ] {
        let body = format!(
            r#"{{"items": [{{"product_id": "prod_1", "quantity": 2, "unit_price": {price}}}]}}"#
        );
        let response = post_text(&app, &token, &body).await;
        assert_eq!(response.status(), StatusCode::CREATED, "{price}");
        let order: Value = response.json().await.expect("an order");
        assert_eq!(order["total"], total, "{price}");
        assert_eq!(order["currency"], "USD", "the configured default");
    }
    let before = app.event_count().await;
    for price in [
        "29.999",
        "0.30000000000000004",
        "-1",
        "1e-3",
        "true",
        "\"abc\"",
    ] {
        let body = format!(
            r#"{{"items": [{{"product_id": "prod_1", "quantity": 1, "unit_price": {price}}}]}}"#
        );
        let refused = problem(
            post_text(&app, &token, &body).await,
            StatusCode::BAD_REQUEST,
            "validation_error",
        )
        .await;
        assert_eq!(fields(&refused), ["items[0].unit_price"], "{price}");
    }
    // Yen have no minor unit: 1500 is fine, 1500.5 is not.
    let yen = post_text(
        &app,
        &token,
        r#"{"currency": "JPY", "items": [{"product_id": "p", "quantity": 1, "unit_price": 1500.5}]}"#,
    )
    .await;
    problem(yen, StatusCode::BAD_REQUEST, "validation_error").await;
    assert_eq!(
        app.event_count().await,
        before,
        "nothing refused was written"
    );
}

#[tokio::test]
async fn product_ids_may_be_integers_and_items_bare_ids() {
    let app = spawn_app().await;
    let token = user("usr_ids");
    let response = post_text(
        &app,
        &token,
        r#"{"items": [{"product_id": 1, "quantity": 2, "unit_price": "999.99"}]}"#,
    )
    .await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let order: Value = response.json().await.expect("an order");
    assert_eq!(order["items"][0]["product_id"], "1");
    assert_eq!(order["total"], "1999.98");
    for bad in [r#"-1"#, r#"1.5"#, r#"null"#, r#"[1]"#] {
        let body =
            format!(r#"{{"items": [{{"product_id": {bad}, "quantity": 1, "unit_price": "1"}}]}}"#);
        let refused = problem(
            post_text(&app, &token, &body).await,
            StatusCode::BAD_REQUEST,
            "validation_error",
        )
        .await;
        assert_eq!(fields(&refused), ["items[0].product_id"], "{bad}");
    }
    // The overview's items as strings: a product id alone is one unit; with
    // no catalogue it has no price, and says so.
    let refused = problem(
        post_text(
            &app,
            &token,
            r#"{"customerId": "usr_ids", "items": ["prod_1"]}"#,
        )
        .await,
        StatusCode::BAD_REQUEST,
        "validation_error",
    )
    .await;
    assert_eq!(fields(&refused), ["items[0].unit_price"]);
    let other = problem(
        post_text(
            &app,
            &token,
            r#"{"user_id": "usr_ids", "customerId": "usr_other", "items": [{"product_id": "p", "quantity": 1, "unit_price": "1"}]}"#,
        )
        .await,
        StatusCode::BAD_REQUEST,
        "validation_error",
    )
    .await;
    assert_eq!(fields(&other), ["customerId"]);
}

#[tokio::test]
async fn addresses_take_the_technical_designs_names_and_alpha_3_countries() {
    let app = spawn_app().await;
    let token = user("usr_addresses");
    let mut body = order_body();
    body["shipping_address"] = json!({
        "address_type": "shipping", "first_name": "John", "last_name": "Doe",
        "address_line1": "123 Main St", "address_line2": "Apt 4B", "city": "New York",
        "state": "NY", "postal_code": "10001", "country": "USA",
        "phone": "555-123-4567", "email": "john.doe@example.com"
    });
    body["billing_address"] = address(); // today's names: line1, GB
    let response = app.post_order(&token, &body).await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let order: Value = response.json().await.expect("an order");
    let shipping = &order["shipping_address"];
    assert_eq!(shipping["address_type"], "SHIPPING");
    assert_eq!(shipping["address_line1"], "123 Main St");
    assert_eq!(shipping["address_line2"], "Apt 4B");
    assert_eq!(shipping["state"], "NY");
    assert_eq!(shipping["country"], "US");
    assert_eq!(
        order["billing_address"]["address_line1"],
        "12 St James's Square"
    );
    assert_eq!(order["billing_address"]["address_type"], "BILLING");
    // The stored projection answers the same.
    let read: Value = app
        .get(
            &token,
            &format!("/api/v1/orders/{}", order["id"].as_str().unwrap()),
        )
        .await
        .json()
        .await
        .expect("an order");
    assert_eq!(read["shipping_address"], order["shipping_address"]);

    let mut twice = order_body();
    twice["shipping_address"]["address_line1"] = json!("Elsewhere 1");
    twice["shipping_address"]["address_type"] = json!("BILLING");
    twice["shipping_address"]["country"] = json!("GBX");
    let refused = problem(
        app.post_order(&token, &twice).await,
        StatusCode::BAD_REQUEST,
        "validation_error",
    )
    .await;
    assert_eq!(
        fields(&refused),
        [
            "shipping_address.address_type",
            "shipping_address.address_line1",
            "shipping_address.country"
        ]
    );
}

#[tokio::test]
async fn an_address_is_needed_only_when_something_is_shipped() {
    let app = spawn_app().await;
    let token = user("usr_digital");
    let before = app.event_count().await;
    let mut shipped = order_body();
    shipped.as_object_mut().unwrap().remove("shipping_address");
    shipped["shipping_method"] = json!("STANDARD");
    let refused = problem(
        app.post_order(&token, &shipped).await,
        StatusCode::BAD_REQUEST,
        "validation_error",
    )
    .await;
    assert_eq!(fields(&refused), ["shipping_address"]);
    assert_eq!(app.event_count().await, before);

    for method in [json!("Digital"), Value::Null] {
        let mut digital = shipped.clone();
        digital["shipping_method"] = method.clone();
        let response = app.post_order(&token, &digital).await;
        assert_eq!(response.status(), StatusCode::CREATED, "{method}");
        let order: Value = response.json().await.expect("an order");
        assert_eq!(order["shipping_address"], Value::Null);
        assert_eq!(order["billing_address"], Value::Null);
    }
    let mut upper = order_body();
    upper["shipping_method"] = json!("EXPRESS");
    let order: Value = app.post_order(&token, &upper).await.json().await.unwrap();
    assert_eq!(order["shipping_method"], "express");
    assert_eq!(order["shipping"], "15.00");
}

#[tokio::test]
async fn payment_method_names_and_variants_are_kept() {
    let app = spawn_app().await;
    let token = user("usr_variants");
    let mut body = order_body();
    body.as_object_mut().unwrap().remove("payment");
    body["payment_method"] = json!("CREDIT_CARD");
    body["items"][0]["variant_id"] = json!("123e4567-e89b-12d3-a456-426614174002");
    let response = app.post_order(&token, &body).await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let order: Value = response.json().await.expect("an order");
    assert_eq!(order["payment_method"], "CREDIT_CARD");
    assert_eq!(
        order["items"][0]["variant_id"],
        "123e4567-e89b-12d3-a456-426614174002"
    );
    assert_eq!(order["items"][1]["variant_id"], Value::Null);
    let id = order["id"].as_str().unwrap();
    let read: Value = app
        .get(&token, &format!("/api/v1/orders/{id}"))
        .await
        .json()
        .await
        .expect("an order");
    assert_eq!(
        read["items"], order["items"],
        "the projection keeps variants"
    );
}

#[tokio::test]
async fn shipping_records_carrier_and_tracking_and_the_times_are_kept() {
    let app = spawn_app().await;
    let token = user("usr_fulfilment");
    let order = app.create_order(&token).await;
    let id = order["id"].as_str().unwrap();
    let patch = |body: Value| {
        app.client
            .patch(app.url(&format!("/api/v1/orders/{id}")))
            .bearer_auth(admin())
            .json(&body)
            .send()
    };
    // Tracking belongs to shipping only.
    let refused = problem(
        patch(json!({"status": "paid", "carrier": "UPS"}))
            .await
            .unwrap(),
        StatusCode::BAD_REQUEST,
        "validation_error",
    )
    .await;
    assert_eq!(fields(&refused), ["carrier"]);
    assert_eq!(
        patch(json!({"status": "paid"})).await.unwrap().status(),
        StatusCode::OK
    );
    let shipped: Value = patch(
        json!({"status": "shipped", "carrier": "UPS", "tracking_number": "1Z999AA10123456784"}),
    )
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    assert_eq!(shipped["carrier"], "UPS");
    assert_eq!(shipped["tracking_number"], "1Z999AA10123456784");
    assert_eq!(shipped["completed_at"], Value::Null);
    let delivered: Value = patch(json!({"status": "delivered"}))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(delivered["completed_at"].is_string());
    assert_eq!(delivered["carrier"], "UPS", "kept after delivery");
    let read: Value = app
        .get(&token, &format!("/api/v1/orders/{id}"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(read["tracking_number"], "1Z999AA10123456784");
    assert_eq!(read["completed_at"], delivered["completed_at"]);

    // order.shipped records them, and its published data (the full order)
    // carries them.
    use orders::store::schema::events;
    let (payload, snapshot): (Value, Value) = events::table
        .filter(events::event_type.eq("order.shipped"))
        .select((events::payload, events::snapshot))
        .first(&mut app.conn().await)
        .await
        .expect("order.shipped");
    assert_eq!(payload["carrier"], "UPS");
    assert_eq!(payload["tracking_number"], "1Z999AA10123456784");
    assert_eq!(snapshot["carrier"], "UPS");
    assert_eq!(snapshot["tracking_number"], "1Z999AA10123456784");

    let other = app.create_order(&token).await;
    let cancelled: Value = app
        .cancel(&token, other["id"].as_str().unwrap())
        .await
        .json()
        .await
        .unwrap();
    assert!(cancelled["cancelled_at"].is_string());
}
