//! Refunds: durable, done once, admins only.

use crate::helpers::*;

#[tokio::test]
async fn a_refund_is_durable_done_once_and_only_for_admins() {
    let app = spawn_app().await;
    let order = app.pending_order("alice").await;
    let paid: Value = app
        .pay(&token("alice"), &body(order, "tok_visa"))
        .await
        .json()
        .await
        .unwrap();
    let id = paid["id"].as_str().unwrap().to_owned();
    let refund = |bearer: String| {
        app.client
            .post(format!("{}/api/v1/payments/{id}/refund", app.address))
            .bearer_auth(bearer)
            .json(&json!({"reason": "amount_mismatch"}))
            .send()
    };
    problem(
        refund(token("alice")).await.unwrap(),
        StatusCode::FORBIDDEN,
        "forbidden",
    )
    .await;
    assert_eq!(
        refund(admin()).await.unwrap().status(),
        StatusCode::ACCEPTED
    );
    let refunded = app.eventually(&id, |p| p["status"] == "refunded").await;
    assert_eq!(refunded["id"], id);
    // Asking again changes nothing.
    assert_eq!(refund(admin()).await.unwrap().status(), StatusCode::OK);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(app.provider.ledger(), (1, 1));
    assert_eq!(
        app.event_types().await,
        ["payment.successful", "payment.refunded"]
    );

    // A failed payment has nothing to refund.
    let declined_order = app.pending_order("alice").await;
    let declined: Value = app
        .pay(&token("alice"), &body(declined_order, "tok_chargeDeclined"))
        .await
        .json()
        .await
        .unwrap();
    problem(
        app.client
            .post(format!(
                "{}/api/v1/payments/{}/refund",
                app.address,
                declined["id"].as_str().unwrap()
            ))
            .bearer_auth(admin())
            .send()
            .await
            .unwrap(),
        StatusCode::CONFLICT,
        "not_refundable",
    )
    .await;
}

/// A succeeded 59.98 payment of a new order of alice; its id.
async fn paid(app: &TestApp) -> String {
    let order = app.pending_order("alice").await;
    let paid: Value = app
        .pay(&token("alice"), &body(order, "tok_visa"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(paid["status"], "succeeded", "{paid}");
    paid["id"].as_str().unwrap().to_owned()
}

fn refunds_of(app: &TestApp, id: &str) -> String {
    format!("{}/api/v1/payments/{id}/refunds", app.address)
}

async fn refund(app: &TestApp, id: &str, body: Value) -> reqwest::Response {
    app.client
        .post(refunds_of(app, id))
        .bearer_auth(admin())
        .json(&body)
        .send()
        .await
        .unwrap()
}

async fn refunds(app: &TestApp, bearer: &str, id: &str) -> Vec<Value> {
    let listed: Value = app
        .get(bearer, &format!("/api/v1/payments/{id}/refunds"))
        .await
        .json()
        .await
        .unwrap();
    listed["data"].as_array().unwrap().clone()
}

/// The data of every `payment.refunded` in the outbox, in order.
async fn refunded_events(app: &TestApp) -> Vec<Value> {
    let mut conn = app.db.connect().await.unwrap();
    let rows: Vec<String> = diesel::sql_query(
        "SELECT data::text AS data FROM payments.outbox \
         WHERE event_type = 'payment.refunded' ORDER BY position",
    )
    .load::<DataRow>(&mut conn)
    .await
    .unwrap()
    .into_iter()
    .map(|row| row.data)
    .collect();
    rows.iter()
        .map(|data| serde_json::from_str(data).unwrap())
        .collect()
}

#[derive(QueryableByName)]
struct DataRow {
    #[diesel(sql_type = diesel::sql_types::Text)]
    data: String,
}

#[tokio::test]
async fn a_partial_refund_gives_back_exactly_its_amount_and_the_rest_can_follow() {
    let app = spawn_app().await;
    let id = paid(&app).await;

    let response = refund(&app, &id, json!({"amount": "1.00", "reason": "partial"})).await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let first: Value = response.json().await.unwrap();
    assert_eq!(first["amount"], "1.00");
    assert_eq!(first["currency"], "USD");
    assert_eq!(first["reason"], "partial");
    assert_eq!(first["payment_id"], id.as_str());

    let partly = app
        .eventually(&id, |p| p["status"] == "partially_refunded")
        .await;
    assert_eq!(partly["captured_amount"], "59.98");
    assert_eq!(partly["refunded_amount"], "1.00");
    let listed = refunds(&app, &token("alice"), &id).await;
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0]["id"], first["id"]);
    assert_eq!(listed[0]["status"], "succeeded");

    // The rest (no amount: all that remains), then nothing is left.
    let rest: Value = refund(&app, &id, json!({"reason": "returned"}))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(rest["amount"], "58.98");
    let refunded = app.eventually(&id, |p| p["status"] == "refunded").await;
    assert_eq!(refunded["refunded_amount"], "59.98");
    let beyond = problem(
        refund(&app, &id, json!({"amount": "0.01"})).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "refund_exceeds_captured",
    )
    .await;
    assert_eq!(beyond["refundable_amount"], "0.00");

    // Each refund is one event carrying the refund and the running total.
    let events = refunded_events(&app).await;
    assert_eq!(events.len(), 2);
    assert_eq!(events[0]["refund"]["id"], first["id"]);
    assert_eq!(events[0]["refund"]["amount"], "1.00");
    assert_eq!(events[0]["refunded_amount"], "1.00");
    assert_eq!(events[0]["status"], "partially_refunded");
    assert_eq!(events[1]["refund"]["amount"], "58.98");
    assert_eq!(events[1]["refunded_amount"], "59.98");
    assert_eq!(events[1]["status"], "refunded");
    // The provider made exactly those two refunds.
    assert_eq!(app.provider.ledger(), (1, 2));
}

#[tokio::test]
async fn a_refund_beyond_what_remains_is_refused_and_changes_nothing() {
    let app = spawn_app().await;
    let id = paid(&app).await;
    let refused = problem(
        refund(&app, &id, json!({"amount": "59.99"})).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "refund_exceeds_captured",
    )
    .await;
    assert_eq!(refused["refundable_amount"], "59.98");
    assert!(refunds(&app, &admin(), &id).await.is_empty());
    let payment: Value = app
        .get(&admin(), &format!("/api/v1/payments/{id}"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(payment["status"], "succeeded");
    assert_eq!(payment["refunded_amount"], "0.00");
}

#[tokio::test]
async fn concurrent_partial_refunds_never_exceed_what_was_captured() {
    let app = spawn_app().await;
    let id = paid(&app).await;
    // Eight refunds of 20.00 at once against 59.98 captured: two fit.
    let answers = futures_util::future::join_all(
        (0..8).map(|_| refund(&app, &id, json!({"amount": "20.00", "reason": "race"}))),
    )
    .await;
    let statuses: Vec<StatusCode> = answers.iter().map(|r| r.status()).collect();
    let accepted = statuses
        .iter()
        .filter(|s| **s == StatusCode::CREATED)
        .count();
    let refused = statuses
        .iter()
        .filter(|s| **s == StatusCode::UNPROCESSABLE_ENTITY)
        .count();
    assert_eq!((accepted, refused), (2, 6), "{statuses:?}");
    let settled = app
        .eventually(&id, |p| p["refunded_amount"] == "40.00")
        .await;
    assert_eq!(settled["status"], "partially_refunded");
    // What remains can still be refunded, and then nothing more.
    assert_eq!(
        refund(&app, &id, json!({"amount": "19.98"})).await.status(),
        StatusCode::CREATED
    );
    app.eventually(&id, |p| p["status"] == "refunded").await;
    let listed = refunds(&app, &admin(), &id).await;
    assert_eq!(listed.len(), 3);
    assert_eq!(app.provider.ledger(), (1, 3));
}

#[tokio::test]
async fn no_refund_body_is_ever_silently_ignored() {
    let app = spawn_app().await;
    let id = paid(&app).await;
    let send = |route: &'static str, content_type: &'static str, body: &'static str| {
        app.client
            .post(format!("{}/api/v1/payments/{id}/{route}", app.address))
            .bearer_auth(admin())
            .header("content-type", content_type)
            .body(body)
            .send()
    };
    for route in ["refunds", "refund"] {
        let cases = [
            (
                "text/plain",
                r#"{"amount": "1.00"}"#,
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
            ),
            (
                "application/json",
                r#"{"reason": "partial""#,
                StatusCode::BAD_REQUEST,
                "malformed_request",
            ),
            (
                "application/json",
                r#"{"reason": "x", "refund_everything": true}"#,
                StatusCode::BAD_REQUEST,
                "validation_error",
            ),
            (
                "application/json",
                r#"{"reason": "card 4242424242424242"}"#,
                StatusCode::BAD_REQUEST,
                "card_data_refused",
            ),
            (
                "application/json",
                r#"{"reason": "bad\u0000reason"}"#,
                StatusCode::BAD_REQUEST,
                "validation_error",
            ),
        ];
        for (content_type, body, status, kind) in cases {
            let response = send(route, content_type, body).await.unwrap();
            assert_eq!(response.status(), status, "{route} {content_type} {body}");
            let problem: Value = response.json().await.unwrap();
            assert_eq!(problem["type"], kind, "{route} {body}: {problem}");
        }
    }
    for (body, field) in [
        (r#"{"amount": "abc"}"#, "amount"),
        (r#"{"amount": "0.00"}"#, "amount"),
        (r#"{"amount": "1.001"}"#, "amount"),
        (r#"{"amount": "1.00", "currency": "EUR"}"#, "currency"),
        (
            r#"{"items": [{"item_id": "0193a0e4-0000-7000-8000-000000000000", "quantity": 0}]}"#,
            "items[0].quantity",
        ),
    ] {
        let response = send("refunds", "application/json", body).await.unwrap();
        let problem = problem(response, StatusCode::BAD_REQUEST, "validation_error").await;
        assert_eq!(problem["errors"][0]["field"], field, "{body}: {problem}");
    }
    // Nothing was refunded by any of them.
    assert!(refunds(&app, &admin(), &id).await.is_empty());
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(app.provider.ledger(), (1, 0));
    assert_eq!(app.event_types().await, ["payment.successful"]);
}

#[tokio::test]
async fn a_refund_with_an_idempotency_key_is_taken_once() {
    let app = spawn_app().await;
    let id = paid(&app).await;
    let keyed = |body: Value| {
        app.client
            .post(refunds_of(&app, &id))
            .bearer_auth(admin())
            .header("Idempotency-Key", "refund-1")
            .json(&body)
            .send()
    };
    let first = keyed(json!({"amount": "5.00"})).await.unwrap();
    assert_eq!(first.status(), StatusCode::CREATED);
    let first: Value = first.json().await.unwrap();
    let again = keyed(json!({"amount": "5.00"})).await.unwrap();
    assert_eq!(again.status(), StatusCode::CREATED);
    assert_eq!(again.headers()["idempotent-replayed"], "true");
    let again: Value = again.json().await.unwrap();
    assert_eq!(again["id"], first["id"]);
    problem(
        keyed(json!({"amount": "6.00"})).await.unwrap(),
        StatusCode::UNPROCESSABLE_ENTITY,
        "idempotency_key_reused",
    )
    .await;
    app.eventually(&id, |p| p["refunded_amount"] == "5.00")
        .await;
    assert_eq!(refunds(&app, &admin(), &id).await.len(), 1);
    // Its owner may read the refunds; nobody else may.
    assert_eq!(refunds(&app, &token("alice"), &id).await.len(), 1);
    problem(
        app.get(&token("mallory"), &format!("/api/v1/payments/{id}/refunds"))
            .await,
        StatusCode::NOT_FOUND,
        "not_found",
    )
    .await;
    problem(
        app.client
            .post(refunds_of(&app, &id))
            .bearer_auth(token("alice"))
            .json(&json!({"amount": "1.00"}))
            .send()
            .await
            .unwrap(),
        StatusCode::FORBIDDEN,
        "forbidden",
    )
    .await;
}
