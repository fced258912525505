//! Charging: outcomes, declines, card data, double charges, amounts, and orders that must never be charged.

use crate::helpers::*;

#[tokio::test]
async fn a_good_card_is_charged_and_the_outcome_is_in_the_outbox() {
    let app = spawn_app().await;
    let order = app.pending_order("alice").await;
    let response = app.pay(&token("alice"), &body(order, "tok_visa")).await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let payment: Value = response.json().await.unwrap();
    assert_eq!(payment["status"], "succeeded");
    assert_eq!(payment["user_id"], "alice");
    assert_eq!(payment["amount"], "59.98");
    assert!(
        payment["provider_reference"]
            .as_str()
            .unwrap()
            .starts_with("ch_")
    );

    let mut conn = app.db.connect().await.unwrap();
    let events: Vec<(String, String)> = outbox::table
        .select((outbox::event_type, outbox::subject))
        .load(&mut conn)
        .await
        .unwrap();
    assert_eq!(
        events,
        vec![(
            "payment.successful".to_owned(),
            payment["order_id"].as_str().unwrap().to_owned()
        )]
    );

    let fetched: Value = app
        .get(
            &token("alice"),
            &format!("/api/v1/payments/{}", payment["id"].as_str().unwrap()),
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(fetched, payment);
}

#[tokio::test]
async fn declines_are_final_failures_with_their_reason() {
    let app = spawn_app().await;
    for (card, reason) in [
        ("tok_chargeDeclined", "card_declined"),
        ("tok_chargeDeclinedInsufficientFunds", "insufficient_funds"),
        ("tok_processingError", "processing_error"),
        ("tok_madeUp", "invalid_token"),
    ] {
        let order = app.pending_order("bob").await;
        let payment: Value = app
            .pay(&token("bob"), &body(order, card))
            .await
            .json()
            .await
            .unwrap();
        assert_eq!(payment["status"], "failed", "{card}");
        assert_eq!(payment["failure_reason"], reason, "{card}");
    }
    assert_eq!(app.counts().await, (4, 4));
}

#[tokio::test]
async fn card_numbers_are_refused_and_never_stored() {
    let app = spawn_app().await;
    let order = app.pending_order("carol").await;
    for token_value in [
        "4242424242424242",
        "4242 4242 4242 4242",
        "5555-5555-5555-4444",
    ] {
        let response = app.pay(&token("carol"), &body(order, token_value)).await;
        let problem = problem(response, StatusCode::BAD_REQUEST, "card_data_refused").await;
        assert!(
            !problem.to_string().contains("4242"),
            "the number is not echoed"
        );
    }
    let mut sneaky = body(order, "tok_visa");
    sneaky["note"] = json!("my card is 378282246310005");
    problem(
        app.pay(&token("carol"), &sneaky).await,
        StatusCode::BAD_REQUEST,
        "card_data_refused",
    )
    .await;
    // The same number JSON-escaped is decoded before the check.
    let escaped = body(order, "4242424242424242")
        .to_string()
        .replace("\"4242424242424242\"", "\"\\u0034242424242424242\"");
    assert!(escaped.contains("\\u0034"), "{escaped}");
    let response = app
        .client
        .post(format!("{}/api/v1/payments", app.address))
        .bearer_auth(token("carol"))
        .header("content-type", "application/json")
        .body(escaped)
        .send()
        .await
        .unwrap();
    problem(response, StatusCode::BAD_REQUEST, "card_data_refused").await;
    assert_eq!(app.counts().await, (0, 0));
}

#[tokio::test]
async fn an_order_is_never_charged_twice() {
    let app = spawn_app().await;
    let order = app.pending_order("dave").await;
    let first = body(order, "tok_visa");
    assert_eq!(
        app.pay(&token("dave"), &first).await.status(),
        StatusCode::CREATED
    );

    let again = app.pay(&token("dave"), &first).await;
    problem(again, StatusCode::CONFLICT, "payment_exists").await;
    assert_eq!(app.counts().await.0, 1);

    // After a failed attempt the order may be paid again.
    let order = app.pending_order("dave").await;
    let mut declined = body(order, "tok_chargeDeclined");
    assert_eq!(
        app.pay(&token("dave"), &declined).await.status(),
        StatusCode::CREATED
    );
    declined["token"] = json!("tok_visa");
    let retried: Value = app
        .pay(&token("dave"), &declined)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(retried["status"], "succeeded");
}

#[tokio::test]
async fn an_amount_sent_as_a_json_number_is_read_exactly_from_its_text() {
    let app = spawn_app().await;
    let order = app.pending_order("nora").await;
    let text = format!(
        r#"{{"order_id": "{order}", "amount": 5998e-2, "currency": "USD", "method": "card", "token": "tok_visa"}}"#
    );
    let response = app
        .client
        .post(format!("{}/api/v1/payments", app.address))
        .bearer_auth(token("nora"))
        .header("content-type", "application/json")
        .body(text)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::CREATED);
    let payment: Value = response.json().await.unwrap();
    assert_eq!(payment["amount"], "59.98");
    assert_eq!(payment["status"], "succeeded");
}

#[tokio::test]
async fn invalid_payments_are_refused_field_by_field() {
    let app = spawn_app().await;
    let order = app.pending_order("erin").await;
    for (field, value, expected) in [
        ("amount", json!("0.00"), "amount"),
        ("amount", json!("-1"), "amount"),
        ("amount", json!(59.985), "amount"),
        ("amount", json!(-59.98), "amount"),
        ("amount", json!("1.234"), "amount"),
        ("currency", json!("XYZ"), "currency"),
        ("token", json!(""), "token"),
        ("order_id", json!("not-a-uuid"), "order_id"),
        ("surprise", json!(1), "surprise"),
    ] {
        let mut invalid = body(order, "tok_visa");
        invalid[field] = value;
        let problem = problem(
            app.pay(&token("erin"), &invalid).await,
            StatusCode::BAD_REQUEST,
            "validation_error",
        )
        .await;
        assert_eq!(problem["errors"][0]["field"], expected, "{field}");
    }
    assert_eq!(app.counts().await, (0, 0));
}

#[tokio::test]
async fn unknown_unpayable_and_mismatched_orders_are_never_charged() {
    let app = spawn_app().await;
    problem(
        app.pay(&token("alice"), &body(Uuid::now_v7(), "tok_visa"))
            .await,
        StatusCode::NOT_FOUND,
        "order_not_found",
    )
    .await;

    for status in ["cancelled", "paid", "shipped"] {
        let order = Uuid::now_v7();
        app.order_is(order, "alice", status).await;
        let refused = problem(
            app.pay(&token("alice"), &body(order, "tok_visa")).await,
            StatusCode::CONFLICT,
            "order_not_payable",
        )
        .await;
        assert_eq!(refused["order_status"], status);
    }

    let order = app.pending_order("alice").await;
    for (amount, currency) in [("59.97", "USD"), ("0.01", "USD"), ("59.98", "EUR")] {
        let mut wrong = body(order, "tok_visa");
        wrong["amount"] = json!(amount);
        wrong["currency"] = json!(currency);
        let refused = problem(
            app.pay(&token("alice"), &wrong).await,
            StatusCode::UNPROCESSABLE_ENTITY,
            "amount_mismatch",
        )
        .await;
        assert_eq!(refused["expected_amount"], "59.98");
        assert_eq!(refused["expected_currency"], "USD");
    }
    // An admin paying for someone must name the order's owner.
    let mut for_bob = body(order, "tok_visa");
    for_bob["user_id"] = json!("bob");
    problem(
        app.pay(&admin(), &for_bob).await,
        StatusCode::NOT_FOUND,
        "order_not_found",
    )
    .await;

    assert_eq!(app.counts().await, (0, 0));
    assert_eq!(app.provider.ledger(), (0, 0));
    let mut for_alice = body(order, "tok_visa");
    for_alice["user_id"] = json!("alice");
    let paid: Value = app.pay(&admin(), &for_alice).await.json().await.unwrap();
    assert_eq!(
        (paid["status"].as_str(), paid["user_id"].as_str()),
        (Some("succeeded"), Some("alice"))
    );
}

#[tokio::test]
async fn orders_unreachable_means_nothing_charged() {
    let app = spawn_app_with(
        |settings| settings.orders.url = "http://127.0.0.1:9".to_owned(),
        None,
    )
    .await;
    let refused = problem(
        app.pay(&token("alice"), &body(Uuid::now_v7(), "tok_visa"))
            .await,
        StatusCode::SERVICE_UNAVAILABLE,
        "dependency_unavailable",
    )
    .await;
    assert!(!refused.to_string().contains("127.0.0.1"), "{refused}");
    assert_eq!(app.counts().await, (0, 0));
}

/// Orders states the facts of a charge it asks for (owner and total, decided
/// when the order was placed): payments takes them without asking orders
/// back, and still refuses an order it knows was cancelled since. Another
/// admin, or a token merely named like orders without the admin scope, is
/// checked against orders as any caller is.
#[tokio::test]
async fn orders_states_its_own_charges_and_a_cancelled_order_is_still_refused() {
    let app = spawn_app().await;
    let orders = TokenSpec::new(
        "payments",
        contracts::order::SERVICE_SUBJECT,
        &["payments.read", "payments.write", "payments.admin"],
    )
    .sign();
    let order = Uuid::now_v7();
    let mut stated = body(order, "tok_visa");
    stated["user_id"] = json!("alice");
    let paid = app.pay(&orders, &stated).await;
    assert_eq!(paid.status(), StatusCode::CREATED);
    let paid: Value = paid.json().await.unwrap();
    assert_eq!(paid["status"], "succeeded");
    assert_eq!(paid["user_id"], "alice");
    let asked = app.orders.received_requests().await.unwrap_or_default();
    assert!(asked.is_empty(), "orders was asked back: {asked:?}");

    // Payments has consumed order.cancelled for another order.
    let cancelled = Uuid::now_v7();
    let mut conn = app.db.connect().await.unwrap();
    diesel::sql_query("INSERT INTO payments.cancelled_orders (order_id) VALUES ($1)")
        .bind::<diesel::sql_types::Uuid, _>(cancelled)
        .execute(&mut conn)
        .await
        .unwrap();
    let mut late = body(cancelled, "tok_visa");
    late["user_id"] = json!("alice");
    let refused = problem(
        app.pay(&orders, &late).await,
        StatusCode::CONFLICT,
        "order_not_payable",
    )
    .await;
    assert_eq!(refused["order_status"], "cancelled");

    // Anyone else is checked against orders, which knows neither order.
    let named_only = TokenSpec::new(
        "payments",
        contracts::order::SERVICE_SUBJECT,
        &["payments.read", "payments.write"],
    )
    .sign();
    let mut unknown = body(Uuid::now_v7(), "tok_visa");
    unknown["user_id"] = json!(contracts::order::SERVICE_SUBJECT);
    for bearer in [named_only, admin()] {
        problem(
            app.pay(&bearer, &unknown).await,
            StatusCode::NOT_FOUND,
            "order_not_found",
        )
        .await;
    }
    assert_eq!(app.counts().await, (1, 1));
}
