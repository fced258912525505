//! Integration tests of the payments API: the real service on a random port,
//! its own database, its own exchange and queue names.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use payments::store::schema::{idempotency_keys, outbox, payments as payments_table};
use reqwest::StatusCode;
use secrecy::SecretString;
use serde_json::{Value, json};
use test_support::{TestDatabase, broker::TestBroker, tokens::TokenSpec};
use uuid::Uuid;

struct TestApp {
    address: String,
    db: TestDatabase,
    _broker: TestBroker,
    client: reqwest::Client,
}

async fn spawn_app() -> TestApp {
    let db = TestDatabase::create("payments", "payments", payments::MIGRATIONS)
        .await
        .unwrap();
    let mut broker = TestBroker::new();
    let mut settings = payments::config::Settings::defaults().unwrap();
    settings.http.port = 0;
    settings.http.workers = 2;
    settings.database.url = SecretString::from(db.url.clone());
    settings.database.migrate_on_start = false;
    settings.database.pool_size = 8;
    settings.auth.hs256_secret = Some(test_support::tokens::secret());
    settings.auth.issuer = test_support::tokens::ISSUER.to_owned();
    settings.amqp.url = SecretString::from(broker.url.clone());
    settings.amqp.exchange = broker.exchange("payments.events");
    settings.amqp.consume.exchange = broker.exchange("orders.events");
    settings.amqp.consume.queue = broker.queue("payments.order-events");
    settings.provider.backoff_ms = 1;
    let app = payments::app::Application::build(settings).await.unwrap();
    let address = format!("http://127.0.0.1:{}", app.port());
    tokio::spawn(app.run_until_stopped());
    TestApp {
        address,
        db,
        _broker: broker,
        client: reqwest::Client::new(),
    }
}

fn token(user: &str) -> String {
    TokenSpec::new("payments", user, &["payments.read", "payments.write"]).sign()
}

fn body(token: &str) -> Value {
    json!({"order_id": Uuid::now_v7(), "amount": "59.98", "currency": "USD", "method": "card", "token": token})
}

impl TestApp {
    async fn pay(&self, bearer: &str, body: &Value) -> reqwest::Response {
        self.client
            .post(format!("{}/api/v1/payments", self.address))
            .bearer_auth(bearer)
            .json(body)
            .send()
            .await
            .unwrap()
    }

    async fn get(&self, bearer: &str, path: &str) -> reqwest::Response {
        self.client
            .get(format!("{}{path}", self.address))
            .bearer_auth(bearer)
            .send()
            .await
            .unwrap()
    }

    async fn counts(&self) -> (i64, i64) {
        let mut conn = self.db.connect().await.unwrap();
        let payments: i64 = payments_table::table
            .count()
            .get_result(&mut conn)
            .await
            .unwrap();
        let events: i64 = outbox::table.count().get_result(&mut conn).await.unwrap();
        (payments, events)
    }
}

async fn problem(response: reqwest::Response, status: StatusCode, kind: &str) -> Value {
    assert_eq!(response.status(), status);
    assert_eq!(
        response.headers()["content-type"],
        "application/problem+json"
    );
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["type"], kind, "{body}");
    body
}

#[tokio::test]
async fn a_good_card_is_charged_and_the_outcome_is_in_the_outbox() {
    let app = spawn_app().await;
    let response = app.pay(&token("alice"), &body("tok_visa")).await;
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
        let payment: Value = app
            .pay(&token("bob"), &body(card))
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
    for token_value in [
        "4242424242424242",
        "4242 4242 4242 4242",
        "5555-5555-5555-4444",
    ] {
        let response = app.pay(&token("carol"), &body(token_value)).await;
        let problem = problem(response, StatusCode::BAD_REQUEST, "card_data_refused").await;
        assert!(
            !problem.to_string().contains("4242"),
            "the number is not echoed"
        );
    }
    let mut sneaky = body("tok_visa");
    sneaky["note"] = json!("my card is 378282246310005");
    problem(
        app.pay(&token("carol"), &sneaky).await,
        StatusCode::BAD_REQUEST,
        "card_data_refused",
    )
    .await;
    assert_eq!(app.counts().await, (0, 0));
}

#[tokio::test]
async fn an_order_is_never_charged_twice() {
    let app = spawn_app().await;
    let first = body("tok_visa");
    assert_eq!(
        app.pay(&token("dave"), &first).await.status(),
        StatusCode::CREATED
    );

    let again = app.pay(&token("dave"), &first).await;
    problem(again, StatusCode::CONFLICT, "payment_exists").await;
    assert_eq!(app.counts().await.0, 1);

    // After a failed attempt the order may be paid again.
    let mut declined = body("tok_chargeDeclined");
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
async fn invalid_payments_are_refused_field_by_field() {
    let app = spawn_app().await;
    for (field, value, expected) in [
        ("amount", json!("0.00"), "amount"),
        ("amount", json!("-1"), "amount"),
        ("amount", json!(59.98), "amount"),
        ("amount", json!("1.234"), "amount"),
        ("currency", json!("XYZ"), "currency"),
        ("token", json!(""), "token"),
        ("order_id", json!("not-a-uuid"), "order_id"),
        ("surprise", json!(1), "surprise"),
    ] {
        let mut invalid = body("tok_visa");
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
async fn scopes_and_ownership_are_enforced() {
    let app = spawn_app().await;
    let response = app
        .client
        .post(format!("{}/api/v1/payments", app.address))
        .json(&body("tok_visa"))
        .send()
        .await
        .unwrap();
    problem(response, StatusCode::UNAUTHORIZED, "unauthorized").await;
    let orders_audience = TokenSpec::new("orders", "frank", &["payments.write"]).sign();
    problem(
        app.pay(&orders_audience, &body("tok_visa")).await,
        StatusCode::UNAUTHORIZED,
        "unauthorized",
    )
    .await;
    let read_only = TokenSpec::new("payments", "frank", &["payments.read"]).sign();
    problem(
        app.pay(&read_only, &body("tok_visa")).await,
        StatusCode::FORBIDDEN,
        "forbidden",
    )
    .await;
    let mut for_someone = body("tok_visa");
    for_someone["user_id"] = json!("gina");
    problem(
        app.pay(&token("frank"), &for_someone).await,
        StatusCode::FORBIDDEN,
        "forbidden",
    )
    .await;

    let payment: Value = app
        .pay(&token("frank"), &body("tok_visa"))
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
async fn an_idempotency_key_replays_and_guards_its_body() {
    let app = spawn_app().await;
    let request = body("tok_visa");
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
    let other = app
        .client
        .post(format!("{}/api/v1/payments", app.address))
        .bearer_auth(token("ivy"))
        .header("Idempotency-Key", "key-1")
        .json(&body("tok_visa"))
        .send()
        .await
        .unwrap();
    assert_eq!(other.status(), StatusCode::CREATED);
    assert_eq!(app.counts().await.0, 2);
}

#[tokio::test]
async fn operations_endpoints_answer() {
    let app = spawn_app().await;
    let ready: Value = app
        .client
        .get(format!("{}/ready", app.address))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(ready["status"], "ok", "{ready}");
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
async fn a_request_abandoned_mid_charge_is_taken_over_by_its_retry() {
    // Arrange: a crash after the payment was recorded but before it settled.
    let app = spawn_app().await;
    let request = body("tok_visa");
    let payment_id = Uuid::now_v7();
    let long_ago = time::OffsetDateTime::now_utc() - time::Duration::minutes(5);
    let mut conn = app.db.connect().await.unwrap();
    let canonical = serde_json::to_vec(&request).unwrap();
    let hash: String = {
        use sha2::Digest;
        sha2::Sha256::digest(&canonical)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    };
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
            idempotency_keys::payment_id.eq(payment_id),
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
