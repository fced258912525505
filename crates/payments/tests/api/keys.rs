//! Idempotency-Keys: replays, guarded bodies, abandoned requests taken over, refusals that keep nothing.

use crate::helpers::*;

#[tokio::test]
async fn an_idempotency_key_replays_and_guards_its_body() {
    let app = spawn_app().await;
    let order = app.pending_order("henry").await;
    let request = body(order, "tok_visa");
    let send = |key: &'static str, body: Value| {
        app.client
            .post(format!("{}/api/v1/payments", app.address))
            .bearer_auth(token("henry"))
            .header("Idempotency-Key", key)
            .json(&body)
            .send()
    };
    let first = send("key-1", request.clone()).await.unwrap();
    assert_eq!(first.status(), StatusCode::CREATED);
    assert!(first.headers().get("idempotent-replayed").is_none());
    let first_body = first.bytes().await.unwrap();

    // Same body with keys reordered: the same request.
    let reordered: Value = serde_json::from_str(&serde_json::to_string(&request).unwrap()).unwrap();
    let replay = send("key-1", reordered).await.unwrap();
    assert_eq!(replay.status(), StatusCode::CREATED);
    assert_eq!(replay.headers()["idempotent-replayed"], "true");
    assert_eq!(replay.bytes().await.unwrap(), first_body);

    let mut different = request.clone();
    different["amount"] = json!("1.00");
    problem(
        send("key-1", different).await.unwrap(),
        StatusCode::UNPROCESSABLE_ENTITY,
        "idempotency_key_reused",
    )
    .await;

    // Keys are scoped to the caller: another user's identical key is theirs.
    let ivys = app.pending_order("ivy").await;
    let other = app
        .client
        .post(format!("{}/api/v1/payments", app.address))
        .bearer_auth(token("ivy"))
        .header("Idempotency-Key", "key-1")
        .json(&body(ivys, "tok_visa"))
        .send()
        .await
        .unwrap();
    assert_eq!(other.status(), StatusCode::CREATED);
    assert_eq!(app.counts().await.0, 2);
}

#[tokio::test]
async fn a_request_abandoned_mid_charge_is_taken_over_by_its_retry() {
    // Arrange: a crash after the payment was recorded but before it settled
    // (reconciliation is kept out of the way: the retry gets there first).
    let app = spawn_app_with(
        |settings| settings.reconcile.scan_every_ms = 3_600_000,
        None,
    )
    .await;
    let order = app.pending_order("kim").await;
    let request = body(order, "tok_visa");
    let payment_id = Uuid::now_v7();
    let long_ago = time::OffsetDateTime::now_utc() - time::Duration::minutes(5);
    let mut conn = app.db.connect().await.unwrap();
    let hash = platform::idempotency::fingerprint("POST", "/api/v1/payments", &[], &request);
    diesel::insert_into(payments_table::table)
        .values((
            payments_table::id.eq(payment_id),
            payments_table::order_id
                .eq(Uuid::parse_str(request["order_id"].as_str().unwrap()).unwrap()),
            payments_table::user_id.eq("kim"),
            payments_table::amount_minor.eq(5998_i64),
            payments_table::currency.eq("USD"),
            payments_table::method.eq("card"),
            payments_table::status.eq("processing"),
            payments_table::created_at.eq(long_ago),
            payments_table::updated_at.eq(long_ago),
        ))
        .execute(&mut conn)
        .await
        .unwrap();
    diesel::insert_into(idempotency_keys::table)
        .values((
            idempotency_keys::owner.eq("kim"),
            idempotency_keys::key.eq("crashed-1"),
            idempotency_keys::request_hash.eq(hash),
            idempotency_keys::resource_id.eq(payment_id),
            idempotency_keys::created_at.eq(long_ago),
        ))
        .execute(&mut conn)
        .await
        .unwrap();

    // Act: the client retries with the same key.
    let retry = app
        .client
        .post(format!("{}/api/v1/payments", app.address))
        .bearer_auth(token("kim"))
        .header("Idempotency-Key", "crashed-1")
        .json(&request)
        .send()
        .await
        .unwrap();

    // Assert: the same payment was completed, not a second one created.
    assert_eq!(retry.status(), StatusCode::CREATED);
    let payment: Value = retry.json().await.unwrap();
    assert_eq!(payment["id"], payment_id.to_string());
    assert_eq!(payment["status"], "succeeded");
    assert_eq!(app.counts().await, (1, 1));
}

#[tokio::test]
async fn a_refused_request_keeps_nothing_under_its_key() {
    let app = spawn_app().await;
    let order = app.pending_order("alice").await;
    let mut wrong = body(order, "tok_visa");
    wrong["amount"] = json!("1.00");
    let send = |body: Value| {
        app.client
            .post(format!("{}/api/v1/payments", app.address))
            .bearer_auth(token("alice"))
            .header("Idempotency-Key", "pay-1")
            .json(&body)
            .send()
    };
    problem(
        send(wrong).await.unwrap(),
        StatusCode::UNPROCESSABLE_ENTITY,
        "amount_mismatch",
    )
    .await;
    // The corrected request may use the same key.
    let paid = send(body(order, "tok_visa")).await.unwrap();
    assert_eq!(paid.status(), StatusCode::CREATED);
    let mut conn = app.db.connect().await.unwrap();
    let keys: i64 = idempotency_keys::table
        .count()
        .get_result(&mut conn)
        .await
        .unwrap();
    assert_eq!(keys, 1);
}
