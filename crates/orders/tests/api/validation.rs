//! Bad input: a precise 4xx problem, and nothing written.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{TestApp, fields, order_body, problem, spawn_app, user};

async fn rejected(app: &TestApp, body: Value) -> Vec<String> {
    let response = app.post_order(&user("usr_abc123"), &body).await;
    let problem = problem(response, StatusCode::BAD_REQUEST, "validation_error").await;
    fields(&problem)
}

fn with(path: &[&str], value: Value) -> Value {
    let mut body = order_body();
    let mut target = &mut body;
    for key in &path[..path.len() - 1] {
        target = match key.parse::<usize>() {
            Ok(index) => &mut target[index],
            Err(_) => &mut target[*key],
        };
    }
    let last = path[path.len() - 1];
    match last.parse::<usize>() {
        Ok(index) => target[index] = value,
        Err(_) => target[last] = value,
    }
    body
}

#[tokio::test]
async fn each_invalid_field_is_named_and_nothing_is_written() {
    let app = spawn_app().await;
    let cases: Vec<(Value, &str)> = vec![
        (with(&["items"], json!([])), "items"),
        (
            with(&["items", "0", "quantity"], json!(0)),
            "items[0].quantity",
        ),
        (
            with(&["items", "0", "quantity"], json!(-2)),
            "items[0].quantity",
        ),
        (
            with(&["items", "0", "quantity"], json!(10_001)),
            "items[0].quantity",
        ),
        (
            with(&["items", "0", "quantity"], json!("2")),
            "items[0].quantity",
        ),
        (
            with(&["items", "0", "quantity"], json!(1.5)),
            "items[0].quantity",
        ),
        (
            with(&["items", "0", "unit_price"], json!(-29.99)),
            "items[0].unit_price",
        ),
        (
            with(&["items", "0", "unit_price"], json!("-1.00")),
            "items[0].unit_price",
        ),
        (
            with(&["items", "0", "unit_price"], json!("29.999")),
            "items[0].unit_price",
        ),
        (
            with(&["items", "0", "unit_price"], json!("abc")),
            "items[0].unit_price",
        ),
        (
            with(&["items", "1", "product_id"], json!("")),
            "items[1].product_id",
        ),
        (
            with(&["items", "1", "currency"], json!("EUR")),
            "items[1].currency",
        ),
        (with(&["currency"], json!("XYZ")), "currency"),
        (with(&["currency"], json!("usd")), "currency"),
        (
            with(&["shipping_address", "country"], json!("Britain")),
            "shipping_address.country",
        ),
        (
            with(&["shipping_address", "email"], json!("nope")),
            "shipping_address.email",
        ),
        (with(&["notes"], json!("x".repeat(2001))), "notes"),
        (with(&["payment", "token"], json!("")), "payment.token"),
        (with(&["user_id"], json!("has space")), "user_id"),
        (with(&["surprise"], json!(true)), "surprise"),
    ];
    for (body, field) in cases {
        assert_eq!(
            rejected(&app, body).await,
            vec![field.to_owned()],
            "for {field}"
        );
    }
    assert_eq!(app.event_count().await, 0);
}

#[tokio::test]
async fn every_bad_field_is_listed_at_once() {
    let app = spawn_app().await;
    let mut body = with(&["items", "0", "quantity"], json!(0));
    body["currency"] = json!("NOPE");
    body["shipping_address"] = json!({"first_name": "Ada"});

    let fields = rejected(&app, body).await;

    for expected in [
        "currency",
        "items[0].quantity",
        "shipping_address.last_name",
        "shipping_address.address_line1",
        "shipping_address.city",
        "shipping_address.postal_code",
        "shipping_address.country",
    ] {
        assert!(
            fields.contains(&expected.to_owned()),
            "{expected} missing from {fields:?}"
        );
    }
}

#[tokio::test]
async fn malformed_json_is_a_400_malformed_request() {
    let app = spawn_app().await;
    let response = app
        .client
        .post(app.url("/api/v1/orders"))
        .bearer_auth(user("usr_abc123"))
        .header("content-type", "application/json")
        .body("{\"currency\": \"USD\", \"items\": [")
        .send()
        .await
        .unwrap();
    problem(response, StatusCode::BAD_REQUEST, "malformed_request").await;
    assert_eq!(app.event_count().await, 0);
}

#[tokio::test]
async fn a_missing_required_field_is_named() {
    let app = spawn_app().await;
    let mut body = order_body();
    body.as_object_mut().unwrap().remove("items");
    assert_eq!(rejected(&app, body).await, vec!["items".to_owned()]);
}

#[tokio::test]
async fn a_body_that_is_not_json_is_a_415() {
    let app = spawn_app().await;
    let response = app
        .client
        .post(app.url("/api/v1/orders"))
        .bearer_auth(user("usr_abc123"))
        .header("content-type", "text/plain")
        .body(order_body().to_string())
        .send()
        .await
        .unwrap();
    problem(
        response,
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "unsupported_media_type",
    )
    .await;
}

#[tokio::test]
async fn an_oversize_body_is_a_413_and_nothing_is_written() {
    let app = spawn_app().await;
    let body = with(&["notes"], json!("x".repeat(70_000)));
    let response = app.post_order(&user("usr_abc123"), &body).await;
    problem(response, StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large").await;
    assert_eq!(app.event_count().await, 0);
}

#[tokio::test]
async fn too_many_items_are_refused() {
    let app = spawn_app().await;
    let items: Vec<Value> = (0..101)
        .map(|i| json!({"product_id": format!("p{i}"), "quantity": 1, "unit_price": "1.00"}))
        .collect();
    assert_eq!(
        rejected(&app, with(&["items"], json!(items))).await,
        vec!["items".to_owned()]
    );
}

#[tokio::test]
async fn a_bad_list_query_is_a_400_naming_the_parameter() {
    let app = spawn_app().await;
    let token = user("usr_abc123");
    for (query, field) in [
        ("limit=0", "query.limit"),
        ("limit=101", "query.limit"),
        ("offset=-1", "query.offset"),
        ("status=lost", "query.status"),
    ] {
        let response = app.get(&token, &format!("/api/v1/orders?{query}")).await;
        let body = problem(response, StatusCode::BAD_REQUEST, "validation_error").await;
        assert_eq!(fields(&body), vec![field.to_owned()], "for {query}");
    }
    let response = app.get(&token, "/api/v1/orders?limit=ten").await;
    problem(response, StatusCode::BAD_REQUEST, "validation_error").await;
}
