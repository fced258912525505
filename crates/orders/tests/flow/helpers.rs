//! The whole platform for a test: orders and payments, each on its own
//! database, sharing exchanges and queues named for this test only.

use std::time::Duration;

use secrecy::SecretString;
use serde_json::{Value, json};
use test_support::{
    TestDatabase,
    broker::TestBroker,
    tokens::{self, TokenSpec},
};

pub struct Names {
    pub orders_exchange: String,
    pub payments_exchange: String,
    pub orders_queue: String,
    pub payments_queue: String,
}

pub struct Platform {
    pub orders: String,
    pub payments: Option<String>,
    /// Where orders reaches payments: a proxy bound at once, routed to
    /// payments once it runs.
    pub payments_port: u16,
    payments_proxy: test_support::proxy::TcpProxy,
    pub names: Names,
    pub broker: TestBroker,
    pub client: reqwest::Client,
    provider_latency_ms: u64,
    relay_poll_ms: u64,
    authorization_expiry_seconds: Option<i64>,
    orders_db: TestDatabase,
    payments_db: TestDatabase,
}

#[derive(Default)]
pub struct Options {
    /// Leave payments stopped (start it later with `start_payments`).
    pub payments_down: bool,
    /// Where orders reaches RabbitMQ (e.g. through a proxy).
    pub orders_amqp_url: Option<String>,
    /// How long the simulated provider takes to charge.
    pub provider_latency_ms: u64,
    /// The relays' safety-net poll (default 500 ms).
    pub relay_poll_ms: Option<u64>,
    /// The shop captures at shipment (`payments.capture: manual`).
    pub manual_capture: bool,
    /// Payments voids authorizations older than this (default: a week).
    pub authorization_expiry_seconds: Option<i64>,
    /// Orders parks a job after this many attempts (default: the config's).
    pub max_job_attempts: Option<i32>,
}

/// Every JSON log line the services in this test process wrote.
static LOGS: std::sync::Mutex<Vec<u8>> = std::sync::Mutex::new(Vec::new());

struct CapturedLogs;

impl std::io::Write for CapturedLogs {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        if std::env::var_os("TEST_LOG").is_some() {
            std::io::stdout().write_all(bytes)?;
        }
        LOGS.lock()
            .unwrap_or_else(|p| p.into_inner())
            .extend_from_slice(bytes);
        Ok(bytes.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// The log lines captured so far, parsed.
pub fn captured_logs() -> Vec<Value> {
    let bytes = LOGS.lock().unwrap_or_else(|p| p.into_inner()).clone();
    String::from_utf8_lossy(&bytes)
        .lines()
        .filter_map(|line| serde_json::from_str(line).ok())
        .collect()
}

fn quiet_logs() {
    let config = platform::telemetry::LogConfig {
        format: platform::telemetry::LogFormat::Json,
        level: "info".to_owned(),
    };
    platform::telemetry::init("tests", &config, || CapturedLogs);
}

fn orders_settings(
    db: &TestDatabase,
    broker: &TestBroker,
    names: &Names,
    payments_port: u16,
    amqp_url: Option<String>,
) -> orders::config::Settings {
    let mut settings = orders::config::Settings::defaults().unwrap();
    settings.http.port = 0;
    settings.http.workers = 2;
    // Every answer a test provokes must be one the OpenAPI lists.
    settings.http.check_contract = true;
    settings.database.url = SecretString::from(db.url.clone());
    settings.database.migrate_on_start = false;
    settings.database.pool_size = 8;
    settings.auth.hs256_secret = Some(tokens::secret());
    settings.auth.issuer = tokens::ISSUER.to_owned();
    settings.amqp.url = SecretString::from(amqp_url.unwrap_or(broker.url.clone()));
    settings.amqp.exchange = names.orders_exchange.clone();
    settings.amqp.consume.exchange = names.payments_exchange.clone();
    settings.amqp.consume.queue = names.orders_queue.clone();
    settings.amqp.max_backoff_ms = 300;
    settings.relay.poll_ms = 500;
    settings.payments.url = format!("http://127.0.0.1:{payments_port}");
    settings.jobs.poll_ms = 100;
    settings.jobs.max_backoff_ms = 300;
    settings.jobs.base_backoff_ms = 20;
    settings.rate_limit.enabled = false;
    settings
}

pub async fn spawn_platform(options: Options) -> Platform {
    quiet_logs();
    let mut broker = TestBroker::new();
    let names = Names {
        orders_exchange: broker.exchange("orders.events"),
        payments_exchange: broker.exchange("payments.events"),
        orders_queue: broker.queue("orders.payment-events"),
        payments_queue: broker.queue("payments.order-events"),
    };
    let orders_db = TestDatabase::create("orders", "orders", orders::MIGRATIONS)
        .await
        .unwrap();
    let payments_db = TestDatabase::create("payments", "payments", payments::MIGRATIONS)
        .await
        .unwrap();
    // Payments' address, bound now (orders needs it before payments starts).
    let payments_proxy = test_support::proxy::TcpProxy::start_unrouted()
        .await
        .unwrap();
    let payments_port = payments_proxy.port;

    let relay_poll_ms = options.relay_poll_ms.unwrap_or(500);
    let mut settings = orders_settings(
        &orders_db,
        &broker,
        &names,
        payments_port,
        options.orders_amqp_url.clone(),
    );
    settings.relay.poll_ms = relay_poll_ms;
    if options.manual_capture {
        settings.payments.capture = contracts::payment::CaptureMethod::Manual;
    }
    if let Some(attempts) = options.max_job_attempts {
        settings.jobs.max_attempts = attempts;
    }
    let app = orders::app::Application::build(settings).await.unwrap();
    let orders = format!("http://127.0.0.1:{}", app.port());
    tokio::spawn(app.run_until_stopped());

    let mut platform = Platform {
        orders,
        payments: None,
        payments_port,
        payments_proxy,
        names,
        broker,
        client: reqwest::Client::new(),
        provider_latency_ms: options.provider_latency_ms,
        relay_poll_ms,
        authorization_expiry_seconds: options.authorization_expiry_seconds,
        orders_db,
        payments_db,
    };
    if !options.payments_down {
        platform.start_payments().await;
    }
    platform
}

impl Platform {
    /// A second orders instance on the same database and broker; returns its URL.
    pub async fn start_another_orders(&self) -> String {
        let mut settings = orders_settings(
            &self.orders_db,
            &self.broker,
            &self.names,
            self.payments_port,
            None,
        );
        settings.relay.poll_ms = self.relay_poll_ms;
        let app = orders::app::Application::build(settings).await.unwrap();
        let address = format!("http://127.0.0.1:{}", app.port());
        tokio::spawn(app.run_until_stopped());
        address
    }

    /// Another orders instance as a real process (so it can be killed with
    /// SIGKILL), on the same database, broker names and payments; its log
    /// lines (JSON) go to `log`. Returns the process and its base URL.
    pub async fn spawn_orders_process(
        &self,
        log: &std::path::Path,
    ) -> (std::process::Child, String) {
        let child = std::process::Command::new(env!("CARGO_BIN_EXE_orders"))
            .arg("serve")
            .env("ORDERS_HTTP__PORT", "0")
            .env("ORDERS_HTTP__WORKERS", "2")
            .env("ORDERS_DATABASE__URL", &self.orders_db.url)
            .env("ORDERS_DATABASE__MIGRATE_ON_START", "false")
            .env("ORDERS_DATABASE__POOL_SIZE", "8")
            .env("ORDERS_AUTH__HS256_SECRET", tokens::SECRET)
            .env("ORDERS_AUTH__ISSUER", tokens::ISSUER)
            .env("ORDERS_AMQP__URL", &self.broker.url)
            .env("ORDERS_AMQP__EXCHANGE", &self.names.orders_exchange)
            .env(
                "ORDERS_AMQP__CONSUME__EXCHANGE",
                &self.names.payments_exchange,
            )
            .env("ORDERS_AMQP__CONSUME__QUEUE", &self.names.orders_queue)
            .env("ORDERS_AMQP__MAX_BACKOFF_MS", "300")
            .env("ORDERS_RELAY__POLL_MS", "500")
            .env(
                "ORDERS_PAYMENTS__URL",
                format!("http://127.0.0.1:{}", self.payments_port),
            )
            .env("ORDERS_JOBS__POLL_MS", "100")
            .env("ORDERS_JOBS__BASE_BACKOFF_MS", "20")
            .env("ORDERS_JOBS__MAX_BACKOFF_MS", "300")
            // A job this instance claimed and never finished is taken over
            // by the other one this soon.
            .env("ORDERS_JOBS__LEASE_MS", "2000")
            .env("ORDERS_RATE_LIMIT__ENABLED", "false")
            .env("ORDERS_LOG__FORMAT", "json")
            .env("OTEL_SDK_DISABLED", "true")
            .stdout(std::fs::File::create(log).unwrap())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let port = test_support::port_from_log(log).await.unwrap();
        (child, format!("http://127.0.0.1:{port}"))
    }

    /// Succeeded charges per order, from payments' own table.
    pub async fn charges_per_order(&self) -> std::collections::HashMap<String, i64> {
        use diesel_async::RunQueryDsl;
        #[derive(diesel::QueryableByName)]
        struct Row {
            #[diesel(sql_type = diesel::sql_types::Text)]
            order_id: String,
            #[diesel(sql_type = diesel::sql_types::BigInt)]
            n: i64,
        }
        let mut conn = self.payments_db.connect().await.unwrap();
        let rows: Vec<Row> = diesel::sql_query(
            "SELECT order_id::text AS order_id, count(*) AS n FROM payments.payments \
             WHERE status = 'succeeded' GROUP BY order_id",
        )
        .load(&mut conn)
        .await
        .unwrap();
        rows.into_iter().map(|row| (row.order_id, row.n)).collect()
    }

    pub async fn start_payments(&mut self) {
        let mut settings = payments::config::Settings::defaults().unwrap();
        settings.http.port = 0;
        settings.http.workers = 2;
        // Every answer a test provokes must be one the OpenAPI lists.
        settings.http.check_contract = true;
        settings.database.url = SecretString::from(self.payments_db.url.clone());
        settings.database.migrate_on_start = false;
        settings.database.pool_size = 8;
        settings.auth.hs256_secret = Some(tokens::secret());
        settings.auth.issuer = tokens::ISSUER.to_owned();
        settings.amqp.url = SecretString::from(self.broker.url.clone());
        settings.amqp.exchange = self.names.payments_exchange.clone();
        settings.amqp.consume.exchange = self.names.orders_exchange.clone();
        settings.amqp.consume.queue = self.names.payments_queue.clone();
        settings.amqp.max_backoff_ms = 300;
        settings.relay.poll_ms = self.relay_poll_ms;
        settings.provider.backoff_ms = 5;
        settings.provider.latency_ms = self.provider_latency_ms;
        settings.orders.url = self.orders.clone();
        settings.jobs.poll_ms = 100;
        settings.jobs.base_backoff_ms = 20;
        settings.jobs.max_backoff_ms = 300;
        settings.rate_limit.enabled = false;
        if let Some(expiry) = self.authorization_expiry_seconds {
            settings.authorizations.expire_after_seconds = expiry;
            settings.authorizations.scan_every_ms = 100;
        }
        let app = payments::app::Application::build(settings).await.unwrap();
        self.payments_proxy
            .route_to(std::net::SocketAddr::from(([127, 0, 0, 1], app.port())));
        self.payments = Some(format!("http://127.0.0.1:{}", app.port()));
        tokio::spawn(app.run_until_stopped());
    }

    pub async fn create_order(&self, user: &str, payment_token: Option<&str>) -> Value {
        let mut body = json!({
            "currency": "USD",
            "items": [
                {"product_id": "prod_123", "quantity": 2, "unit_price": "29.99", "name": "T-shirt"},
                {"product_id": "prod_456", "quantity": 1, "unit_price": "5.00"}
            ],
            "shipping_address": {"first_name": "Ada", "last_name": "Lovelace", "line1": "1 Main St",
                                 "city": "London", "postal_code": "SW1", "country": "GB"}
        });
        if let Some(token) = payment_token {
            body["payment"] = json!({"method": "card", "token": token});
        }
        let response = self
            .client
            .post(format!("{}/api/v1/orders", self.orders))
            .bearer_auth(orders_token(user))
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 201);
        response.json().await.unwrap()
    }

    pub async fn order(&self, user: &str, id: &str) -> Value {
        self.client
            .get(format!("{}/api/v1/orders/{id}", self.orders))
            .bearer_auth(orders_token(user))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    /// Polls the order until `done` holds (or panics after 15 s).
    pub async fn wait_for(
        &self,
        user: &str,
        id: &str,
        what: &str,
        done: impl Fn(&Value) -> bool,
    ) -> Value {
        for _ in 0..150 {
            let order = self.order(user, id).await;
            if done(&order) {
                return order;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!(
            "timed out waiting for {what}: {}",
            self.order(user, id).await
        );
    }

    pub async fn history(&self, user: &str, id: &str) -> Vec<Value> {
        let body: Value = self
            .client
            .get(format!("{}/api/v1/orders/{id}/events", self.orders))
            .bearer_auth(orders_token(user))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        body["data"].as_array().unwrap().clone()
    }

    /// Ships an order as an admin, with a carrier; the status.
    pub async fn ship(&self, id: &str) -> reqwest::StatusCode {
        let admin = TokenSpec::new(
            "orders",
            "ops",
            &["orders.read", "orders.write", "orders.admin"],
        )
        .sign();
        self.client
            .patch(format!("{}/api/v1/orders/{id}", self.orders))
            .bearer_auth(admin)
            .json(&json!({"status": "shipped", "carrier": "UPS", "tracking_number": "1Z999AA10123456784"}))
            .send()
            .await
            .unwrap()
            .status()
    }

    pub async fn patch(&self, id: &str, status: &str) -> reqwest::StatusCode {
        let admin = TokenSpec::new(
            "orders",
            "ops",
            &["orders.read", "orders.write", "orders.admin"],
        )
        .sign();
        self.client
            .patch(format!("{}/api/v1/orders/{id}", self.orders))
            .bearer_auth(admin)
            .json(&json!({"status": status}))
            .send()
            .await
            .unwrap()
            .status()
    }

    pub async fn cancel(&self, user: &str, id: &str) -> Value {
        self.client
            .delete(format!("{}/api/v1/orders/{id}", self.orders))
            .bearer_auth(orders_token(user))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    pub async fn pay(
        &self,
        user: &str,
        order: &Value,
        token: &str,
        key: &str,
    ) -> reqwest::Response {
        self.client
            .post(format!(
                "{}/api/v1/payments",
                self.payments.as_deref().unwrap()
            ))
            .bearer_auth(payments_token(user))
            .header("Idempotency-Key", key)
            .json(&json!({
                "order_id": order["id"], "amount": order["total"], "currency": order["currency"],
                "method": "card", "token": token
            }))
            .send()
            .await
            .unwrap()
    }

    /// Refunds `amount` of a payment (all that remains when `None`) as a
    /// payments admin; the status and the answer.
    pub async fn refund(&self, payment_id: &str, amount: Option<&str>) -> (u16, Value) {
        let admin = TokenSpec::new(
            "payments",
            "ops",
            &["payments.read", "payments.write", "payments.admin"],
        )
        .sign();
        let mut body = json!({"reason": "customer_request"});
        if let Some(amount) = amount {
            body["amount"] = json!(amount);
        }
        let response = self
            .client
            .post(format!(
                "{}/api/v1/payments/{payment_id}/refunds",
                self.payments.as_deref().unwrap()
            ))
            .bearer_auth(admin)
            .json(&body)
            .send()
            .await
            .unwrap();
        (response.status().as_u16(), response.json().await.unwrap())
    }

    pub async fn payments_of(&self, user: &str, order_id: &str) -> Vec<Value> {
        let body: Value = self
            .client
            .get(format!(
                "{}/api/v1/payments?order_id={order_id}",
                self.payments.as_deref().unwrap()
            ))
            .bearer_auth(payments_token(user))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        body["data"].as_array().unwrap().clone()
    }
}

/// An operator's token: both consoles, for both services' audiences.
pub fn ops_token() -> String {
    TokenSpec::new("orders", "oncall", &["orders.ops", "payments.ops"])
        .also_for("payments")
        .sign()
}

impl Platform {
    /// `GET` on a console (`base`: `self.orders` or payments' URL) with the
    /// operator's token: the status and the JSON answer.
    pub async fn ops_get(&self, base: &str, path: &str) -> (u16, Value) {
        let response = self
            .client
            .get(format!("{base}/api/v1/ops{path}"))
            .bearer_auth(ops_token())
            .send()
            .await
            .unwrap();
        (response.status().as_u16(), response.json().await.unwrap())
    }

    /// `POST` on a console with the operator's token.
    pub async fn ops_post(&self, base: &str, path: &str, body: Option<Value>) -> (u16, Value) {
        let mut request = self
            .client
            .post(format!("{base}/api/v1/ops{path}"))
            .bearer_auth(ops_token());
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.unwrap();
        (response.status().as_u16(), response.json().await.unwrap())
    }

    /// Waits until `base`'s console keeps more than `seen` dead letters (in
    /// any state); the newest, in detail.
    pub async fn next_dead_letter(&self, base: &str, seen: usize) -> Value {
        for _ in 0..300 {
            let (status, letters) = self.ops_get(base, "/dead-letters?state=all").await;
            assert_eq!(status, 200, "{letters}");
            let letters = letters.as_array().unwrap();
            if letters.len() > seen {
                let id = &letters[0]["id"];
                let (status, detail) = self.ops_get(base, &format!("/dead-letters/{id}")).await;
                assert_eq!(status, 200, "{detail}");
                return detail;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("no dead letter came to {base}'s console");
    }

    /// Every row of every table of both services' schemas, as text (what a
    /// dump of the databases would hold).
    pub async fn dump_tables(&self) -> String {
        use diesel::sql_types::Text;
        use diesel_async::RunQueryDsl;
        #[derive(diesel::QueryableByName)]
        struct Row {
            #[diesel(sql_type = Text)]
            text: String,
        }
        let mut dump = String::new();
        for (db, schema) in [(&self.orders_db, "orders"), (&self.payments_db, "payments")] {
            let mut conn = db.connect().await.unwrap();
            let tables: Vec<Row> = diesel::sql_query(
                "SELECT table_name::text AS text FROM information_schema.tables \
                 WHERE table_schema = $1 AND table_type = 'BASE TABLE'",
            )
            .bind::<Text, _>(schema)
            .load(&mut conn)
            .await
            .unwrap();
            assert!(tables.len() > 3, "{schema} has its tables");
            for table in tables {
                let rows: Vec<Row> = diesel::sql_query(format!(
                    "SELECT t::text AS text FROM {schema}.\"{}\" t",
                    table.text
                ))
                .load(&mut conn)
                .await
                .unwrap();
                for row in rows {
                    dump.push_str(&row.text);
                    dump.push('\n');
                }
            }
        }
        dump
    }

    /// Runs `sql` on orders' database (to break or mend what a test needs).
    pub async fn orders_sql(&self, sql: &str) {
        use diesel_async::SimpleAsyncConnection;
        let mut conn = self.orders_db.connect().await.unwrap();
        conn.batch_execute(sql).await.unwrap();
    }
}

pub fn orders_token(user: &str) -> String {
    TokenSpec::new("orders", user, &["orders.read", "orders.write"]).sign()
}

pub fn payments_token(user: &str) -> String {
    TokenSpec::new("payments", user, &["payments.read", "payments.write"]).sign()
}

pub fn types(history: &[Value]) -> Vec<String> {
    history
        .iter()
        .map(|e| e["type"].as_str().unwrap().to_owned())
        .collect()
}
