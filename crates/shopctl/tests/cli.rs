//! `shopctl` run as an operator runs it, against a real orders service.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::{Output, Stdio};

use diesel_async::SimpleAsyncConnection;
use secrecy::SecretString;
use serde_json::{Value, json};
use test_support::{TestDatabase, broker::TestBroker, tokens};

struct Orders {
    url: String,
    db: TestDatabase,
    _broker: TestBroker,
}

async fn spawn_orders() -> Orders {
    let db = TestDatabase::create("orders", "orders", orders::MIGRATIONS)
        .await
        .unwrap();
    let mut broker = TestBroker::new();
    let mut settings = orders::config::Settings::defaults().unwrap();
    settings.http.port = 0;
    settings.http.workers = 1;
    settings.http.check_contract = true;
    settings.database.url = SecretString::from(db.url.clone());
    settings.database.migrate_on_start = false;
    settings.database.pool_size = 4;
    settings.auth.hs256_secret = Some(tokens::secret());
    settings.auth.issuer = tokens::ISSUER.to_owned();
    settings.amqp.url = SecretString::from(broker.url.clone());
    settings.amqp.exchange = broker.exchange("orders.events");
    settings.amqp.consume.exchange = broker.exchange("payments.events");
    settings.amqp.consume.queue = broker.queue("orders.payment-events");
    // Nobody listens there: payments' side of a story is missing.
    settings.payments.url = "http://127.0.0.1:9".to_owned();
    settings.rate_limit.enabled = false;
    let app = orders::app::Application::build(settings).await.unwrap();
    let url = format!("http://127.0.0.1:{}", app.port());
    tokio::spawn(app.run_until_stopped());
    Orders {
        url,
        db,
        _broker: broker,
    }
}

fn operator() -> String {
    tokens::TokenSpec::new("orders", "oncall", &["orders.ops"]).sign()
}

/// Runs `shopctl args…` with `token`, `stdin` as its input.
async fn shopctl(orders: &Orders, token: &str, args: &[&str], stdin: &str) -> Output {
    let (url, token, stdin) = (orders.url.clone(), token.to_owned(), stdin.to_owned());
    let args: Vec<String> = args.iter().map(|a| (*a).to_owned()).collect();
    tokio::task::spawn_blocking(move || {
        use std::io::Write;
        let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_shopctl"))
            .args(&args)
            .env("ORDERS_URL", &url)
            .env("PAYMENTS_URL", "http://127.0.0.1:9")
            .env("SHOPCTL_TOKEN", &token)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(stdin.as_bytes())
            .unwrap();
        child.wait_with_output().unwrap()
    })
    .await
    .unwrap()
}

fn text(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

async fn place_order(orders: &Orders) -> String {
    let token = tokens::TokenSpec::new("orders", "kim", &["orders.read", "orders.write"]).sign();
    let order: Value = reqwest::Client::new()
        .post(format!("{}/api/v1/orders", orders.url))
        .bearer_auth(token)
        .json(&json!({
            "currency": "USD",
            "items": [{"product_id": "prod_1", "quantity": 2, "unit_price": "10.00"}],
        }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    order["id"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn an_operator_reads_the_console_and_repairs_a_projection_only_when_confirmed() {
    let orders = spawn_orders().await;
    let id = place_order(&orders).await;

    // Tables for people.
    let listed = shopctl(&orders, &operator(), &["jobs", "list"], "").await;
    assert!(listed.status.success(), "{}", text(&listed));
    assert!(text(&listed).contains("(none)"), "{}", text(&listed));
    let story = shopctl(&orders, &operator(), &["story", &id], "").await;
    assert!(story.status.success(), "{}", text(&story));
    let told = text(&story);
    assert!(told.contains("order.created"), "{told}");
    assert!(
        told.contains("not shown: payments could not be reached"),
        "{told}"
    );
    // JSON for scripts.
    let letters = shopctl(
        &orders,
        &operator(),
        &["--json", "dead-letters", "list"],
        "",
    )
    .await;
    assert!(letters.status.success(), "{}", text(&letters));
    assert_eq!(
        serde_json::from_slice::<Value>(&letters.stdout).unwrap(),
        json!([])
    );

    // A projection broken by hand: reported, then rewritten only once the
    // operator says yes.
    let mut conn = orders.db.connect().await.unwrap();
    conn.batch_execute(&format!(
        "UPDATE orders.orders SET status = 'shipped' WHERE id = '{id}'"
    ))
    .await
    .unwrap();
    let report = shopctl(&orders, &operator(), &["rebuild"], "").await;
    assert!(report.status.success(), "{}", text(&report));
    assert!(
        text(&report).contains("1 order(s) checked, 1 differing"),
        "{}",
        text(&report)
    );
    assert!(text(&report).contains("orders.status"), "{}", text(&report));
    let declined = shopctl(&orders, &operator(), &["rebuild", "--apply"], "n\n").await;
    assert!(!declined.status.success());
    assert!(
        text(&declined).contains("not confirmed; nothing changed"),
        "{}",
        text(&declined)
    );
    let still = shopctl(&orders, &operator(), &["--json", "rebuild"], "").await;
    let still: Value = serde_json::from_slice(&still.stdout).unwrap();
    assert_eq!(still["differing"], 1, "declining changed nothing");
    let confirmed = shopctl(&orders, &operator(), &["rebuild", "--apply"], "y\n").await;
    assert!(confirmed.status.success(), "{}", text(&confirmed));
    let clean = shopctl(&orders, &operator(), &["--json", "rebuild"], "").await;
    let clean: Value = serde_json::from_slice(&clean.stdout).unwrap();
    assert_eq!(clean["differing"], 0, "{clean}");
    let audit = shopctl(&orders, &operator(), &["--json", "audit"], "").await;
    let audit: Value = serde_json::from_slice(&audit.stdout).unwrap();
    assert_eq!(audit[0]["action"], "projection.rebuild");
    assert_eq!(audit[0]["operator"], "oncall");

    // Without the ops scope: refused, and said so.
    let admin = tokens::TokenSpec::new("orders", "boss", &["orders.admin"]).sign();
    let refused = shopctl(&orders, &admin, &["jobs", "list"], "").await;
    assert!(!refused.status.success());
    assert!(text(&refused).contains("403"), "{}", text(&refused));
    assert!(text(&refused).contains("forbidden"), "{}", text(&refused));
    // Nothing to retry: a clear error, not a crash.
    let missing = shopctl(&orders, &operator(), &["--yes", "jobs", "retry", "42"], "").await;
    assert!(!missing.status.success());
    assert!(text(&missing).contains("404"), "{}", text(&missing));
}
