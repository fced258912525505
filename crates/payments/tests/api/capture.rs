//! Manual capture: authorize now, capture (in part) later, or void.

use crate::helpers::*;

/// A manual payment of a new 59.98 order of alice, with `card`; the answer.
async fn authorize(app: &TestApp, card: &str) -> Value {
    let order = app.pending_order("alice").await;
    let mut request = body(order, card);
    request["capture_method"] = json!("manual");
    let response = app.pay(&token("alice"), &request).await;
    assert_eq!(response.status(), StatusCode::CREATED);
    response.json().await.unwrap()
}

async fn post(
    app: &TestApp,
    bearer: &str,
    id: &str,
    action: &str,
    body: Option<Value>,
) -> reqwest::Response {
    let mut request = app
        .client
        .post(format!("{}/api/v1/payments/{id}/{action}", app.address))
        .bearer_auth(bearer);
    if let Some(body) = body {
        request = request.json(&body);
    }
    request.send().await.unwrap()
}

#[tokio::test]
async fn an_authorization_takes_nothing_until_captured_and_then_only_what_was_captured() {
    let app = spawn_app().await;
    let authorized = authorize(&app, "tok_visa").await;
    assert_eq!(authorized["status"], "authorized");
    assert_eq!(authorized["capture_method"], "manual");
    assert_eq!(authorized["captured_amount"], "0.00");
    assert_eq!(app.provider.ledger(), (0, 0));
    let id = authorized["id"].as_str().unwrap();

    // Nothing taken: nothing to refund.
    problem(
        post(
            &app,
            &admin(),
            id,
            "refunds",
            Some(json!({"amount": "1.00"})),
        )
        .await,
        StatusCode::CONFLICT,
        "not_refundable",
    )
    .await;
    // Only admins capture; never more than is held.
    problem(
        post(&app, &token("alice"), id, "capture", None).await,
        StatusCode::FORBIDDEN,
        "forbidden",
    )
    .await;
    problem(
        post(
            &app,
            &admin(),
            id,
            "capture",
            Some(json!({"amount": "60.00"})),
        )
        .await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "capture_exceeds_authorized",
    )
    .await;
    problem(
        post(
            &app,
            &admin(),
            id,
            "capture",
            Some(json!({"amount": "1.00", "all": true})),
        )
        .await,
        StatusCode::BAD_REQUEST,
        "validation_error",
    )
    .await;

    // Part of it captured (one line was out of stock): the rest is released.
    let captured = post(
        &app,
        &admin(),
        id,
        "capture",
        Some(json!({"amount": "29.99"})),
    )
    .await;
    assert_eq!(captured.status(), StatusCode::OK);
    let captured: Value = captured.json().await.unwrap();
    assert_eq!(captured["status"], "succeeded");
    assert_eq!(captured["captured_amount"], "29.99");
    // Capturing again (a retry) answers the same and takes nothing more.
    let again: Value = post(&app, &admin(), id, "capture", None)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(again["captured_amount"], "29.99");
    assert_eq!(app.provider.ledger(), (1, 0));
    problem(
        post(&app, &admin(), id, "void", None).await,
        StatusCode::CONFLICT,
        "not_voidable",
    )
    .await;
    // Refunds are capped at what was captured, not at what was authorized.
    let refused = problem(
        post(
            &app,
            &admin(),
            id,
            "refunds",
            Some(json!({"amount": "30.00"})),
        )
        .await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "refund_exceeds_captured",
    )
    .await;
    assert_eq!(refused["refundable_amount"], "29.99");
    assert_eq!(
        app.event_types().await,
        ["payment.authorized", "payment.captured"]
    );
}

#[tokio::test]
async fn concurrent_captures_take_the_money_once() {
    let app = spawn_app().await;
    let authorized = authorize(&app, "tok_visa").await;
    let id = authorized["id"].as_str().unwrap();
    let bearer = admin();
    let answers =
        futures_util::future::join_all((0..6).map(|_| post(&app, &bearer, id, "capture", None)))
            .await;
    for answer in answers {
        assert_eq!(answer.status(), StatusCode::OK);
    }
    assert_eq!(app.provider.ledger(), (1, 0));
    assert_eq!(
        app.event_types().await,
        ["payment.authorized", "payment.captured"]
    );
}

#[tokio::test]
async fn a_void_releases_the_hold_and_nothing_can_be_captured_after() {
    let app = spawn_app().await;
    let authorized = authorize(&app, "tok_visa").await;
    let id = authorized["id"].as_str().unwrap();
    let voided = post(&app, &admin(), id, "void", None).await;
    assert_eq!(voided.status(), StatusCode::OK);
    let voided: Value = voided.json().await.unwrap();
    assert_eq!(voided["status"], "voided");
    assert_eq!(
        post(&app, &admin(), id, "void", None).await.status(),
        StatusCode::OK
    );
    problem(
        post(&app, &admin(), id, "capture", None).await,
        StatusCode::CONFLICT,
        "not_capturable",
    )
    .await;
    assert_eq!(app.provider.ledger(), (0, 0));
    assert_eq!(
        app.event_types().await,
        ["payment.authorized", "payment.voided"]
    );
    // A voided payment no longer blocks paying the order again.
    let order: Uuid = voided["order_id"].as_str().unwrap().parse().unwrap();
    let paid = app.pay(&token("alice"), &body(order, "tok_visa")).await;
    assert_eq!(paid.status(), StatusCode::CREATED);
}

#[tokio::test]
async fn a_declined_capture_changes_nothing() {
    let app = spawn_app().await;
    let authorized = authorize(&app, "tok_captureDeclined").await;
    assert_eq!(authorized["status"], "authorized");
    let id = authorized["id"].as_str().unwrap();
    let declined = problem(
        post(&app, &admin(), id, "capture", None).await,
        StatusCode::CONFLICT,
        "provider_declined",
    )
    .await;
    assert_eq!(declined["reason"], "capture_declined");
    let payment: Value = app
        .get(&admin(), &format!("/api/v1/payments/{id}"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(payment["status"], "authorized");
    assert_eq!(app.provider.ledger(), (0, 0));
    assert_eq!(app.event_types().await, ["payment.authorized"]);
}
