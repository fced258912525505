//! Editing the lines of a pending order.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{TestApp, admin, problem, spawn_app, spawn_app_with, user};

async fn add(app: &TestApp, token: &str, id: &str, body: Value) -> reqwest::Response {
    app.client
        .post(app.url(&format!("/api/v1/orders/{id}/items")))
        .bearer_auth(token)
        .json(&body)
        .send()
        .await
        .unwrap()
}

async fn change(
    app: &TestApp,
    token: &str,
    id: &str,
    item: &str,
    quantity: i64,
) -> reqwest::Response {
    app.client
        .patch(app.url(&format!("/api/v1/orders/{id}/items/{item}")))
        .bearer_auth(token)
        .json(&json!({ "quantity": quantity }))
        .send()
        .await
        .unwrap()
}

async fn remove(app: &TestApp, token: &str, id: &str, item: &str) -> reqwest::Response {
    app.client
        .delete(app.url(&format!("/api/v1/orders/{id}/items/{item}")))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn lines_are_added_changed_and_removed_with_totals_recomputed() {
    let app = spawn_app_with(|settings| settings.pricing.tax_rate_percent = "10".into()).await;
    let owner = user("alice");
    let order = app.create_order(&owner).await; // 2 × 29.99 + 1 × 5.00 = 64.98, +10% tax
    let id = order["id"].as_str().unwrap();
    assert_eq!(order["total"], "71.48");

    let added = add(
        &app,
        &owner,
        id,
        json!({"product_id": "prod_789", "quantity": 2, "unit_price": "10.00", "name": "Mug"}),
    )
    .await;
    assert_eq!(added.status(), StatusCode::CREATED);
    let added: Value = added.json().await.unwrap();
    assert_eq!(added["items"].as_array().unwrap().len(), 3);
    assert_eq!(added["subtotal"], "84.98");
    assert_eq!(added["tax"], "8.50");
    assert_eq!(added["total"], "93.48");
    let mug = added["items"][2]["id"].as_str().unwrap().to_owned();

    let changed: Value = change(&app, &owner, id, &mug, 5)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(changed["items"][2]["quantity"], 5);
    assert_eq!(changed["items"][2]["subtotal"], "50.00");
    assert_eq!(changed["subtotal"], "114.98");

    let first = order["items"][0]["id"].as_str().unwrap();
    let removed: Value = remove(&app, &owner, id, first).await.json().await.unwrap();
    assert_eq!(removed["subtotal"], "55.00");
    assert_eq!(removed["total"], "60.50");
    assert_eq!(removed["version"], 4);

    let fetched: Value = app
        .get(&owner, &format!("/api/v1/orders/{id}"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(fetched, removed, "the projection follows");
    let types: Vec<String> = app
        .history(&owner, id)
        .await
        .into_iter()
        .map(|(_, t)| t)
        .collect();
    assert_eq!(
        types,
        [
            "order.created",
            "order.item_added",
            "order.item_changed",
            "order.item_removed"
        ]
    );
}

#[tokio::test]
async fn items_are_frozen_once_the_order_is_paid() {
    let app = spawn_app().await;
    let owner = user("alice");
    let order = app.create_order(&owner).await;
    let id = order["id"].as_str().unwrap();
    app.patch_status(&admin(), id, "paid").await;

    let response = add(
        &app,
        &owner,
        id,
        json!({"product_id": "p", "quantity": 1, "unit_price": "1.00"}),
    )
    .await;
    problem(response, StatusCode::CONFLICT, "items_frozen").await;
    let item = order["items"][0]["id"].as_str().unwrap();
    problem(
        change(&app, &owner, id, item, 3).await,
        StatusCode::CONFLICT,
        "items_frozen",
    )
    .await;
    assert_eq!(app.history(&owner, id).await.len(), 2);
}

#[tokio::test]
async fn bad_item_edits_are_refused_and_change_nothing() {
    let app = spawn_app().await;
    let owner = user("alice");
    let order = app.create_order(&owner).await;
    let id = order["id"].as_str().unwrap();
    let first = order["items"][0]["id"].as_str().unwrap();
    let second = order["items"][1]["id"].as_str().unwrap();

    let bad = add(
        &app,
        &owner,
        id,
        json!({"product_id": "p", "quantity": 0, "unit_price": "1.999"}),
    )
    .await;
    let body = problem(bad, StatusCode::BAD_REQUEST, "validation_error").await;
    assert_eq!(crate::helpers::fields(&body), ["quantity", "unit_price"]);
    let euros = add(
        &app,
        &owner,
        id,
        json!({"product_id": "p", "quantity": 1, "unit_price": "1.00", "currency": "EUR"}),
    )
    .await;
    problem(euros, StatusCode::BAD_REQUEST, "validation_error").await;
    problem(
        change(&app, &owner, id, first, 0).await,
        StatusCode::BAD_REQUEST,
        "validation_error",
    )
    .await;
    let unknown = uuid::Uuid::now_v7().to_string();
    problem(
        change(&app, &owner, id, &unknown, 2).await,
        StatusCode::NOT_FOUND,
        "not_found",
    )
    .await;
    assert_eq!(
        remove(&app, &owner, id, first).await.status(),
        StatusCode::OK
    );
    problem(
        remove(&app, &owner, id, second).await,
        StatusCode::BAD_REQUEST,
        "validation_error",
    )
    .await;
    problem(
        add(
            &app,
            &user("mallory"),
            id,
            json!({"product_id": "p", "quantity": 1, "unit_price": "1.00"}),
        )
        .await,
        StatusCode::NOT_FOUND,
        "not_found",
    )
    .await;
    assert_eq!(
        app.history(&owner, id).await.len(),
        2,
        "only the one valid removal"
    );
}

#[tokio::test]
async fn adding_a_line_honours_the_idempotency_key() {
    let app = spawn_app().await;
    let owner = user("alice");
    let id = app.create_order(&owner).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let line = json!({"product_id": "prod_789", "quantity": 1, "unit_price": "3.00"});
    let send = |body: Value| {
        app.client
            .post(app.url(&format!("/api/v1/orders/{id}/items")))
            .bearer_auth(&owner)
            .header("Idempotency-Key", "add-mug-1")
            .json(&body)
            .send()
    };

    let first = send(line.clone()).await.unwrap();
    assert_eq!(first.status(), StatusCode::CREATED);
    let first_body = first.bytes().await.unwrap();
    let again = send(line.clone()).await.unwrap();
    assert_eq!(again.status(), StatusCode::CREATED);
    assert_eq!(again.headers()["idempotent-replayed"], "true");
    assert_eq!(again.bytes().await.unwrap(), first_body);
    let mut other = line;
    other["quantity"] = json!(2);
    problem(
        send(other).await.unwrap(),
        StatusCode::UNPROCESSABLE_ENTITY,
        "idempotency_key_reused",
    )
    .await;

    let types: Vec<String> = app
        .history(&owner, &id)
        .await
        .into_iter()
        .map(|(_, t)| t)
        .collect();
    assert_eq!(
        types,
        ["order.created", "order.item_added"],
        "the line was added once"
    );
}
