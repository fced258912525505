//! `spawn_app`: the real orders service on a random port, on its own database.

use diesel_async::AsyncPgConnection;
use orders::{app::Application, config::Settings};
use platform::telemetry;
use reqwest::{Response, StatusCode};
use secrecy::SecretString;
use serde_json::{Value, json};
use test_support::{
    TestDatabase,
    broker::TestBroker,
    tokens::{self, TokenSpec},
};

pub const AUDIENCE: &str = "orders";

pub struct TestApp {
    pub address: String,
    pub db: TestDatabase,
    /// Held so the test's exchanges and queues are deleted when it ends.
    pub _broker: TestBroker,
    pub client: reqwest::Client,
}

fn init_logs(settings: &Settings) {
    if std::env::var_os("TEST_LOG").is_some() {
        telemetry::init("orders", &settings.log, std::io::stdout);
    } else {
        telemetry::init("orders", &settings.log, std::io::sink);
    }
}

/// Test settings: random port, the test database, the test signing secret,
/// exchange and queue names of this test only, payments unreachable.
pub fn test_settings(db: &TestDatabase, broker: &mut TestBroker) -> Settings {
    let mut settings = Settings::defaults().expect("the built-in defaults load");
    settings.http.port = 0;
    settings.http.workers = 2;
    // Every answer a test provokes must be one the OpenAPI lists.
    settings.http.check_contract = true;
    settings.database.url = SecretString::from(db.url.clone());
    settings.database.migrate_on_start = false;
    settings.database.pool_size = 8;
    settings.auth.hs256_secret = Some(tokens::secret());
    settings.auth.issuer = tokens::ISSUER.to_owned();
    settings.auth.audience = AUDIENCE.to_owned();
    settings.amqp.url = SecretString::from(broker.url.clone());
    settings.amqp.exchange = broker.exchange("orders.events");
    settings.amqp.consume.exchange = broker.exchange("payments.events");
    settings.amqp.consume.queue = broker.queue("orders.payment-events");
    settings.amqp.max_backoff_ms = 500;
    settings.relay.poll_ms = 500;
    // Nothing listens on the discard port: payment requests wait and retry.
    settings.payments.url = "http://127.0.0.1:9".to_owned();
    settings.jobs.poll_ms = 200;
    settings.jobs.max_backoff_ms = 1_000;
    // Tests place many orders per user quickly; the limiter has its own tests.
    settings.rate_limit.enabled = false;
    settings
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(|_| {}).await
}

pub async fn spawn_app_with(configure: impl FnOnce(&mut Settings)) -> TestApp {
    let db = TestDatabase::create("orders", "orders", orders::MIGRATIONS)
        .await
        .expect("a test database");
    let mut broker = TestBroker::new();
    let mut settings = test_settings(&db, &mut broker);
    configure(&mut settings);
    init_logs(&settings);
    let app = Application::build(settings).await.expect("the app builds");
    let address = format!("http://127.0.0.1:{}", app.port());
    tokio::spawn(app.run_until_stopped());
    TestApp {
        address,
        db,
        _broker: broker,
        client: reqwest::Client::new(),
    }
}

/// A user token with `orders.read orders.write`.
pub fn user(subject: &str) -> String {
    TokenSpec::new(AUDIENCE, subject, &["orders.read", "orders.write"]).sign()
}

/// An admin token (`orders.admin`).
pub fn admin() -> String {
    TokenSpec::new(
        AUDIENCE,
        "admin_1",
        &["orders.read", "orders.write", "orders.admin"],
    )
    .sign()
}

pub fn address() -> Value {
    json!({
        "first_name": "Ada", "last_name": "Lovelace", "line1": "12 St James's Square",
        "city": "London", "postal_code": "SW1Y 4JH", "country": "GB", "email": "ada@example.com"
    })
}

/// A valid order: 2 × 29.99 + 1 × 5.00 USD.
pub fn order_body() -> Value {
    json!({
        "currency": "USD",
        "items": [
            {"product_id": "prod_123", "quantity": 2, "unit_price": "29.99", "name": "T-shirt", "sku": "TS-1"},
            {"product_id": "prod_456", "quantity": 1, "unit_price": "5"}
        ],
        "shipping_address": address(),
        "shipping_method": "standard",
        "notes": "Leave at the door",
        "payment": {"method": "card", "token": "tok_visa"}
    })
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.address)
    }

    pub async fn post_order(&self, token: &str, body: &Value) -> Response {
        self.client
            .post(self.url("/api/v1/orders"))
            .bearer_auth(token)
            .json(body)
            .send()
            .await
            .expect("request sent")
    }

    /// Creates an order for `token`'s user and returns its JSON.
    pub async fn create_order(&self, token: &str) -> Value {
        let response = self.post_order(token, &order_body()).await;
        assert_eq!(response.status(), StatusCode::CREATED);
        response.json().await.expect("an order")
    }

    /// A placed order with no card, left pending for an admin to move on.
    pub async fn create_unpaid_order(&self, token: &str) -> Value {
        let mut body = order_body();
        body.as_object_mut().unwrap().remove("payment");
        let response = self.post_order(token, &body).await;
        assert_eq!(response.status(), StatusCode::CREATED);
        response.json().await.expect("an order")
    }

    pub async fn get(&self, token: &str, path: &str) -> Response {
        self.client
            .get(self.url(path))
            .bearer_auth(token)
            .send()
            .await
            .expect("request sent")
    }

    pub async fn patch_status(&self, token: &str, id: &str, status: &str) -> Response {
        self.client
            .patch(self.url(&format!("/api/v1/orders/{id}")))
            .bearer_auth(token)
            .json(&json!({ "status": status }))
            .send()
            .await
            .expect("request sent")
    }

    pub async fn cancel(&self, token: &str, id: &str) -> Response {
        self.client
            .delete(self.url(&format!("/api/v1/orders/{id}?reason=changed%20my%20mind")))
            .bearer_auth(token)
            .send()
            .await
            .expect("request sent")
    }

    /// The sequences and types of an order's events, from the API.
    pub async fn history(&self, token: &str, id: &str) -> Vec<(u64, String)> {
        let response = self
            .get(token, &format!("/api/v1/orders/{id}/events"))
            .await;
        assert_eq!(response.status(), StatusCode::OK);
        let body: Value = response.json().await.expect("a history");
        body["data"]
            .as_array()
            .expect("data is an array")
            .iter()
            .map(|e| {
                (
                    e["sequence"].as_u64().unwrap_or(0),
                    e["type"].as_str().unwrap_or("").to_owned(),
                )
            })
            .collect()
    }

    pub async fn conn(&self) -> AsyncPgConnection {
        self.db
            .connect()
            .await
            .expect("a connection to the test database")
    }

    /// Rows in the event store (for "nothing was written" assertions).
    pub async fn event_count(&self) -> i64 {
        use diesel::prelude::*;
        use diesel_async::RunQueryDsl;
        use orders::store::schema::events;
        events::table
            .count()
            .get_result(&mut self.conn().await)
            .await
            .expect("counted")
    }
}

/// Asserts a problem+json response and returns its body.
pub async fn problem(response: Response, status: StatusCode, kind: &str) -> Value {
    assert_eq!(response.status(), status, "unexpected status");
    let content_type = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    assert_eq!(content_type, "application/problem+json");
    let body: Value = response.json().await.expect("a problem document");
    assert_eq!(body["type"], kind, "problem: {body}");
    assert_eq!(body["status"], status.as_u16());
    assert!(body["title"].is_string());
    body
}

/// The fields a validation problem names.
pub fn fields(problem: &Value) -> Vec<String> {
    problem["errors"]
        .as_array()
        .map(|errors| {
            errors
                .iter()
                .filter_map(|e| e["field"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}
