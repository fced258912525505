//! Integration tests of the payments API: the real service on a random port,
//! its own database, its own exchange and queue names, and a double of the
//! orders service answering the order look-ups.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::Duration;

use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use payments::provider::{PaymentProvider, ProviderError, Resolution, SimulatedProvider};
use payments::store::schema::{idempotency_keys, outbox, payments as payments_table};
use reqwest::StatusCode;
use secrecy::SecretString;
use serde_json::{Value, json};
use test_support::{TestDatabase, broker::TestBroker, tokens::TokenSpec};
use uuid::Uuid;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

mod hostile;

struct TestApp {
    address: String,
    db: TestDatabase,
    _broker: TestBroker,
    client: reqwest::Client,
    orders: MockServer,
    provider: Arc<SimulatedProvider>,
}

async fn spawn_app() -> TestApp {
    spawn_app_with(|_| {}, None).await
}

/// With settings adjusted and, optionally, a provider wrapping the
/// simulated one (tests that interrupt a charge).
async fn spawn_app_with(
    adjust: impl FnOnce(&mut payments::config::Settings),
    wrap: Option<WrapProvider>,
) -> TestApp {
    let db = TestDatabase::create("payments", "payments", payments::MIGRATIONS)
        .await
        .unwrap();
    let mut broker = TestBroker::new();
    let orders = MockServer::start().await;
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
    settings.orders.url = orders.uri();
    settings.orders.retries = 0;
    settings.jobs.poll_ms = 100;
    settings.jobs.base_backoff_ms = 20;
    settings.jobs.max_backoff_ms = 200;
    settings.reconcile.stale_after_seconds = 1;
    settings.reconcile.scan_every_ms = 100;
    // Tests pay many times per user quickly; the limits have their own test.
    settings.rate_limit.enabled = false;
    adjust(&mut settings);
    let provider = Arc::new(SimulatedProvider::default());
    let charging: Arc<dyn PaymentProvider> = match wrap {
        Some(wrap) => wrap(provider.clone()),
        None => provider.clone(),
    };
    let app = payments::app::Application::build_with_provider(settings, charging)
        .await
        .unwrap();
    let address = format!("http://127.0.0.1:{}", app.port());
    tokio::spawn(app.run_until_stopped());
    TestApp {
        address,
        db,
        _broker: broker,
        client: reqwest::Client::new(),
        orders,
        provider,
    }
}

/// Wraps the simulated provider in another (to interrupt charges).
type WrapProvider = Box<dyn FnOnce(Arc<SimulatedProvider>) -> Arc<dyn PaymentProvider>>;

fn token(user: &str) -> String {
    TokenSpec::new("payments", user, &["payments.read", "payments.write"]).sign()
}

fn admin() -> String {
    TokenSpec::new(
        "payments",
        "ops",
        &["payments.read", "payments.write", "payments.admin"],
    )
    .sign()
}

fn body(order_id: Uuid, token: &str) -> Value {
    json!({"order_id": order_id, "amount": "59.98", "currency": "USD", "method": "card", "token": token})
}

impl TestApp {
    /// Orders (the double) now says `id` is `user`'s order in `status`,
    /// totalling 59.98 USD.
    async fn order_is(&self, id: Uuid, user: &str, status: &str) {
        // A later answer wins over an earlier one for the same order.
        static PRIORITY: std::sync::atomic::AtomicU8 = std::sync::atomic::AtomicU8::new(200);
        let priority = PRIORITY
            .fetch_sub(1, std::sync::atomic::Ordering::SeqCst)
            .max(1);
        Mock::given(method("GET"))
            .and(path(format!("/api/v1/orders/{id}")))
            .respond_with(ResponseTemplate::new(200).set_body_json(json!({
                "id": id, "order_number": "ORD-TEST-0001", "user_id": user, "status": status,
                "payment_status": "pending", "currency": "USD", "items": [],
                "subtotal": "59.98", "discount": "0.00", "tax": "0.00", "shipping": "0.00",
                "total": "59.98", "version": 1,
                "created_at": "2026-11-22T10:00:00Z", "updated_at": "2026-11-22T10:00:00Z"
            })))
            .with_priority(priority)
            .mount(&self.orders)
            .await;
    }

    /// A new pending order of `user`, known to orders.
    async fn pending_order(&self, user: &str) -> Uuid {
        let id = Uuid::now_v7();
        self.order_is(id, user, "pending").await;
        id
    }

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

    async fn event_types(&self) -> Vec<String> {
        let mut conn = self.db.connect().await.unwrap();
        outbox::table
            .order(outbox::position.asc())
            .select(outbox::event_type)
            .load(&mut conn)
            .await
            .unwrap()
    }

    /// The id of the first payment of `order`, once there is one.
    async fn first_payment_of(&self, order: Uuid) -> String {
        for _ in 0..100 {
            let listed: Value = self
                .get(&admin(), &format!("/api/v1/payments?order_id={order}"))
                .await
                .json()
                .await
                .unwrap();
            if let Some(id) = listed["data"][0]["id"].as_str() {
                return id.to_owned();
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("order {order} was never charged");
    }

    /// Polls payment `id` (as an admin) until `done` holds.
    async fn eventually(&self, id: &str, done: impl Fn(&Value) -> bool) -> Value {
        for _ in 0..100 {
            let payment: Value = self
                .get(&admin(), &format!("/api/v1/payments/{id}"))
                .await
                .json()
                .await
                .unwrap();
            if done(&payment) {
                return payment;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("payment {id} never reached the expected state");
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

/// A provider whose charges never come back to the service: as if the
/// process died after asking (`charged_first`: the provider did charge).
struct Interrupted {
    inner: Arc<SimulatedProvider>,
    charged_first: bool,
    /// Lets a held charge through (only when not `charged_first`).
    resume: Arc<tokio::sync::Notify>,
}

impl PaymentProvider for Interrupted {
    fn charge<'a>(
        &'a self,
        payment_id: Uuid,
        token: &'a str,
        amount: contracts::money::Money,
    ) -> futures_util::future::BoxFuture<'a, Result<String, ProviderError>> {
        Box::pin(async move {
            if self.charged_first {
                let _ = self.inner.charge(payment_id, token, amount).await;
                std::future::pending::<()>().await;
            }
            self.resume.notified().await;
            self.inner.charge(payment_id, token, amount).await
        })
    }

    fn refund<'a>(
        &'a self,
        payment_id: Uuid,
        charge_reference: &'a str,
        amount: contracts::money::Money,
    ) -> futures_util::future::BoxFuture<'a, Result<String, ProviderError>> {
        self.inner.refund(payment_id, charge_reference, amount)
    }

    fn resolve(
        &self,
        payment_id: Uuid,
    ) -> futures_util::future::BoxFuture<'_, Result<Resolution, ProviderError>> {
        self.inner.resolve(payment_id)
    }
}

fn interrupted(charged_first: bool, resume: Arc<tokio::sync::Notify>) -> Option<WrapProvider> {
    Some(Box::new(move |inner| {
        Arc::new(Interrupted {
            inner,
            charged_first,
            resume,
        }) as Arc<dyn PaymentProvider>
    }))
}

#[tokio::test]
async fn a_charge_interrupted_after_the_provider_took_the_money_is_reconciled_once() {
    let app = spawn_app_with(|_| {}, interrupted(true, Arc::default())).await;
    let order = app.pending_order("alice").await;
    let request = body(order, "tok_visa");
    // The request never comes back: the service "died" mid-charge.
    let hung = app
        .client
        .post(format!("{}/api/v1/payments", app.address))
        .bearer_auth(token("alice"))
        .header("Idempotency-Key", "crash-1")
        .timeout(Duration::from_millis(500))
        .json(&request)
        .send()
        .await;
    assert!(hung.is_err(), "the charge never answers");
    let id = app.first_payment_of(order).await;

    // Reconciliation asks the provider, which did charge: succeeded, once.
    let settled = app.eventually(&id, |p| p["status"] != "processing").await;
    assert_eq!(settled["status"], "succeeded");
    assert!(
        settled["provider_reference"]
            .as_str()
            .unwrap()
            .starts_with("ch_")
    );
    assert_eq!(app.provider.ledger(), (1, 0));
    assert_eq!(app.event_types().await, ["payment.successful"]);
}

#[tokio::test]
async fn a_charge_never_made_is_voided_and_a_late_answer_cannot_overwrite_it() {
    let resume = Arc::new(tokio::sync::Notify::new());
    let app = spawn_app_with(|_| {}, interrupted(false, resume.clone())).await;
    let order = app.pending_order("alice").await;
    let pay = {
        let client = app.client.clone();
        let url = format!("{}/api/v1/payments", app.address);
        let request = body(order, "tok_visa");
        tokio::spawn(async move {
            client
                .post(url)
                .bearer_auth(token("alice"))
                .json(&request)
                .send()
                .await
                .unwrap()
        })
    };
    let id = app.first_payment_of(order).await;
    // Reconciled while the charge is held: the provider never charged, so
    // it voids the payment and the payment fails.
    let settled = app.eventually(&id, |p| p["status"] != "processing").await;
    assert_eq!(settled["status"], "failed");
    assert_eq!(settled["failure_reason"], "abandoned");

    // The held charge finally reaches the provider: refused, and the
    // service's late settle does not overwrite the recorded outcome.
    resume.notify_one();
    let answer: Value = pay.await.unwrap().json().await.unwrap();
    assert_eq!(answer["status"], "failed");
    assert_eq!(app.provider.ledger(), (0, 0));
    assert_eq!(app.event_types().await, ["payment.failed"]);
}
