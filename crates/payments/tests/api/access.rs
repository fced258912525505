//! Who may pay for what, and the operations endpoints.

use crate::helpers::*;

#[tokio::test]
async fn scopes_and_ownership_are_enforced() {
    let app = spawn_app().await;
    let order = app.pending_order("frank").await;
    let response = app
        .client
        .post(format!("{}/api/v1/payments", app.address))
        .json(&body(order, "tok_visa"))
        .send()
        .await
        .unwrap();
    problem(response, StatusCode::UNAUTHORIZED, "unauthorized").await;
    let orders_audience = TokenSpec::new("orders", "frank", &["payments.write"]).sign();
    problem(
        app.pay(&orders_audience, &body(order, "tok_visa")).await,
        StatusCode::UNAUTHORIZED,
        "unauthorized",
    )
    .await;
    let read_only = TokenSpec::new("payments", "frank", &["payments.read"]).sign();
    problem(
        app.pay(&read_only, &body(order, "tok_visa")).await,
        StatusCode::FORBIDDEN,
        "forbidden",
    )
    .await;
    let mut for_someone = body(order, "tok_visa");
    for_someone["user_id"] = json!("gina");
    problem(
        app.pay(&token("frank"), &for_someone).await,
        StatusCode::FORBIDDEN,
        "forbidden",
    )
    .await;

    let payment: Value = app
        .pay(&token("frank"), &body(order, "tok_visa"))
        .await
        .json()
        .await
        .unwrap();
    let path = format!("/api/v1/payments/{}", payment["id"].as_str().unwrap());
    problem(
        app.get(&token("mallory"), &path).await,
        StatusCode::NOT_FOUND,
        "not_found",
    )
    .await;
    let theirs: Value = app
        .get(&token("mallory"), "/api/v1/payments")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(theirs["data"], json!([]));
    let admin = TokenSpec::new("payments", "ops", &["payments.read", "payments.admin"]).sign();
    assert_eq!(app.get(&admin, &path).await.status(), StatusCode::OK);
    let mine: Value = app
        .get(&token("frank"), "/api/v1/payments")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(mine["data"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn operations_endpoints_answer() {
    let app = spawn_app().await;
    // Ready once the consumer holds its broker connection.
    let ready = test_support::wait_until_ready(&app.client, &app.address).await;
    assert_eq!(ready["status"], "ok", "{ready}");
    assert_eq!(ready["checks"][1]["name"], "broker");
    let doc: Value = app
        .client
        .get(format!("{}/openapi.json", app.address))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(doc["paths"]["/api/v1/payments"]["post"].is_object());
    assert!(doc["paths"]["/api/v1/payments/{id}"]["get"].is_object());
}

#[tokio::test]
async fn a_strangers_payment_is_refused_and_the_owner_then_pays() {
    let app = spawn_app().await;
    let alices = app.pending_order("alice").await;

    // Bob pays Alice's order (a tiny amount, then the right one): as if it
    // did not exist. Nothing is charged, nothing stored.
    for amount in ["0.01", "59.98"] {
        let mut attempt = body(alices, "tok_visa");
        attempt["amount"] = json!(amount);
        problem(
            app.pay(&token("bob"), &attempt).await,
            StatusCode::NOT_FOUND,
            "order_not_found",
        )
        .await;
    }
    assert_eq!(app.counts().await, (0, 0));
    assert_eq!(app.provider.ledger(), (0, 0));

    // Alice is not locked out.
    let paid: Value = app
        .pay(&token("alice"), &body(alices, "tok_visa"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(paid["status"], "succeeded");
    assert_eq!(app.provider.ledger(), (1, 0));
}
