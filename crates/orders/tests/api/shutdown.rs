//! Graceful shutdown, with a real signal to the real binary: on SIGTERM the
//! service stops accepting, finishes the request in flight, stops consuming
//! (letting in-flight messages finish), lets the relay and the job worker
//! finish, and exits cleanly within its configured time.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use test_support::{TestDatabase, broker::TestBroker, tokens};
use wiremock::{Mock, MockServer, ResponseTemplate, matchers::method};

use crate::helpers::{AUDIENCE, order_body, user};

#[tokio::test]
async fn sigterm_finishes_the_request_in_flight_and_exits_cleanly() {
    let db = TestDatabase::create("orders", "orders", orders::MIGRATIONS)
        .await
        .unwrap();
    let mut broker = TestBroker::new();
    // A slow User Service keeps a request in flight when the signal comes.
    let users = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(serde_json::json!({"id": "usr_slow"}))
                .set_delay(Duration::from_millis(1_500)),
        )
        .mount(&users)
        .await;
    let log = std::env::temp_dir().join(format!("orders-shutdown-{}.log", uuid::Uuid::new_v4()));
    let child = Command::new(env!("CARGO_BIN_EXE_orders"))
        .arg("serve")
        .env("ORDERS_HTTP__PORT", "0")
        .env("ORDERS_HTTP__WORKERS", "2")
        .env("ORDERS_HTTP__SHUTDOWN_TIMEOUT_SECONDS", "10")
        .env("ORDERS_DATABASE__URL", &db.url)
        .env("ORDERS_DATABASE__MIGRATE_ON_START", "false")
        .env("ORDERS_AUTH__HS256_SECRET", tokens::SECRET)
        .env("ORDERS_AUTH__ISSUER", tokens::ISSUER)
        .env("ORDERS_AUTH__AUDIENCE", AUDIENCE)
        .env("ORDERS_AMQP__URL", &broker.url)
        .env("ORDERS_AMQP__EXCHANGE", broker.exchange("orders.events"))
        .env(
            "ORDERS_AMQP__CONSUME__EXCHANGE",
            broker.exchange("payments.events"),
        )
        .env(
            "ORDERS_AMQP__CONSUME__QUEUE",
            broker.queue("orders.payment-events"),
        )
        .env("ORDERS_USER_SERVICE__URL", users.uri())
        .env("ORDERS_PAYMENTS__URL", "http://127.0.0.1:9")
        .env("ORDERS_RATE_LIMIT__ENABLED", "false")
        .env("ORDERS_LOG__FORMAT", "json")
        .env("OTEL_SDK_DISABLED", "true")
        .stdout(std::fs::File::create(&log).unwrap())
        .stderr(Stdio::null())
        .spawn()
        .expect("the orders binary starts");
    let port = test_support::port_from_log(&log).await.unwrap();
    let base = format!("http://127.0.0.1:{port}");
    let client = reqwest::Client::new();
    let ready = test_support::wait_until_ready(&client, &base).await;
    assert_eq!(ready["status"], "ok", "the service became ready: {ready}");

    let in_flight = {
        let client = client.clone();
        let url = format!("{base}/api/v1/orders");
        tokio::spawn(async move {
            client
                .post(url)
                .bearer_auth(user("usr_slow"))
                .json(&order_body())
                .send()
                .await
        })
    };
    tokio::time::sleep(Duration::from_millis(400)).await;
    let signalled = Instant::now();
    let killed = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());

    let response = in_flight
        .await
        .unwrap()
        .expect("the in-flight request is answered");
    assert_eq!(response.status(), StatusCode::CREATED, "and completed");

    let status = tokio::task::spawn_blocking(move || {
        let mut child = child;
        child.wait().expect("the process ends")
    })
    .await
    .unwrap();
    let logs = std::fs::read_to_string(&log).unwrap_or_default();
    let _ = std::fs::remove_file(&log);
    assert!(status.success(), "a clean exit: {status:?}");
    assert!(
        signalled.elapsed() < Duration::from_secs(10),
        "within its shutdown time: {:?}",
        signalled.elapsed()
    );
    assert!(logs.contains("stopped consuming"), "{logs}");
    assert!(logs.contains("\"stopped\""), "{logs}");
    // The order the request placed is stored.
    let mut conn = db.connect().await.unwrap();
    let orders = test_support::count(&mut conn, "SELECT count(*) AS n FROM orders.orders")
        .await
        .unwrap();
    assert_eq!(orders, 1);
}
