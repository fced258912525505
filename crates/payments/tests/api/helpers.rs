//! What every payments API test uses: the real service on a random port with
//! its own database and broker names, a double of orders, tokens and
//! request bodies.

pub use std::sync::Arc;
pub use std::time::Duration;

pub use diesel::prelude::*;
pub use diesel_async::RunQueryDsl;
pub use payments::provider::{PaymentProvider, ProviderError, Resolution, SimulatedProvider};
pub use payments::store::schema::{idempotency_keys, outbox, payments as payments_table};
pub use reqwest::StatusCode;
pub use secrecy::SecretString;
pub use serde_json::{Value, json};
pub use test_support::{TestDatabase, broker::TestBroker, tokens::TokenSpec};
pub use uuid::Uuid;
pub use wiremock::matchers::{method, path};
pub use wiremock::{Mock, MockServer, ResponseTemplate};

pub struct TestApp {
    pub address: String,
    pub db: TestDatabase,
    pub _broker: TestBroker,
    pub client: reqwest::Client,
    pub orders: MockServer,
    pub provider: Arc<SimulatedProvider>,
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(|_| {}, None).await
}

/// With settings adjusted and, optionally, a provider wrapping the
/// simulated one (tests that interrupt a charge).
pub async fn spawn_app_with(
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
    // Every answer a test provokes must be one the OpenAPI lists.
    settings.http.check_contract = true;
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
pub type WrapProvider = Box<dyn FnOnce(Arc<SimulatedProvider>) -> Arc<dyn PaymentProvider>>;

pub fn token(user: &str) -> String {
    TokenSpec::new("payments", user, &["payments.read", "payments.write"]).sign()
}

pub fn admin() -> String {
    TokenSpec::new(
        "payments",
        "ops",
        &["payments.read", "payments.write", "payments.admin"],
    )
    .sign()
}

pub fn body(order_id: Uuid, token: &str) -> Value {
    json!({"order_id": order_id, "amount": "59.98", "currency": "USD", "method": "card", "token": token})
}

impl TestApp {
    /// Orders (the double) now says `id` is `user`'s order in `status`,
    /// totalling 59.98 USD.
    pub async fn order_is(&self, id: Uuid, user: &str, status: &str) {
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
    pub async fn pending_order(&self, user: &str) -> Uuid {
        let id = Uuid::now_v7();
        self.order_is(id, user, "pending").await;
        id
    }

    pub async fn pay(&self, bearer: &str, body: &Value) -> reqwest::Response {
        self.client
            .post(format!("{}/api/v1/payments", self.address))
            .bearer_auth(bearer)
            .json(body)
            .send()
            .await
            .unwrap()
    }

    pub async fn get(&self, bearer: &str, path: &str) -> reqwest::Response {
        self.client
            .get(format!("{}{path}", self.address))
            .bearer_auth(bearer)
            .send()
            .await
            .unwrap()
    }

    pub async fn counts(&self) -> (i64, i64) {
        let mut conn = self.db.connect().await.unwrap();
        let payments: i64 = payments_table::table
            .count()
            .get_result(&mut conn)
            .await
            .unwrap();
        let events: i64 = outbox::table.count().get_result(&mut conn).await.unwrap();
        (payments, events)
    }

    pub async fn event_types(&self) -> Vec<String> {
        let mut conn = self.db.connect().await.unwrap();
        outbox::table
            .order(outbox::position.asc())
            .select(outbox::event_type)
            .load(&mut conn)
            .await
            .unwrap()
    }

    /// The id of the first payment of `order`, once there is one.
    pub async fn first_payment_of(&self, order: Uuid) -> String {
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
    pub async fn eventually(&self, id: &str, done: impl Fn(&Value) -> bool) -> Value {
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

pub async fn problem(response: reqwest::Response, status: StatusCode, kind: &str) -> Value {
    assert_eq!(response.status(), status);
    assert_eq!(
        response.headers()["content-type"],
        "application/problem+json"
    );
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["type"], kind, "{body}");
    body
}
