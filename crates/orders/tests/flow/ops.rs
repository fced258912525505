//! The operators' console, through the real services and the real broker:
//! dead letters redriven once, parked jobs retried, the outbox re-published,
//! the read model rebuilt, an order's story told, and nobody without the
//! ops scope let in.

use std::time::Duration;

use serde_json::{Value, json};
use test_support::tokens::TokenSpec;

use crate::helpers::{Options, Platform, ops_token, spawn_platform, types};

async fn wait_until(what: &str, mut check: impl AsyncFnMut() -> bool) {
    for _ in 0..300 {
        if check().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("timed out waiting for {what}");
}

async fn audit(platform: &Platform, base: &str) -> Vec<Value> {
    let (status, entries) = platform.ops_get(base, "/audit").await;
    assert_eq!(status, 200, "{entries}");
    entries.as_array().unwrap().clone()
}

#[tokio::test]
async fn a_dead_letter_whose_cause_is_fixed_is_redriven_and_applied_exactly_once() {
    let platform = spawn_platform(Options::default()).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let order = platform.create_order("dora", None).await;
    let id = order["id"].as_str().unwrap().to_owned();

    // Orders cannot record what it consumes (its inbox is gone): the
    // genuine payment fails on every delivery until the queue gives up.
    platform
        .orders_sql("ALTER TABLE orders.inbox RENAME TO inbox_away")
        .await;
    let body = crate::hostile::success(&order, "/payments", &id, "payment.successful");
    platform
        .broker
        .publish(
            &platform.names.payments_exchange,
            "payment.successful",
            &body,
            Default::default(),
        )
        .await
        .unwrap();
    let dead = platform.next_dead_letter(&platform.orders, 0).await;
    assert_eq!(dead["state"], "dead");
    assert_eq!(dead["type"], "payment.successful");
    assert_eq!(dead["subject"], id.as_str());
    assert!(
        dead["reason"].as_str().unwrap().contains("delivery_limit"),
        "{dead}"
    );
    assert!(dead["headers"]["x-death"].is_array(), "{dead}");
    assert_eq!(platform.order("dora", &id).await["status"], "pending");

    // Listed with the filters an operator uses.
    let (_, listed) = platform
        .ops_get(
            &platform.orders,
            "/dead-letters?type=payment.successful&reason=delivery",
        )
        .await;
    assert_eq!(listed.as_array().unwrap().len(), 1, "{listed}");
    let (_, none) = platform
        .ops_get(&platform.orders, "/dead-letters?type=payment.failed")
        .await;
    assert_eq!(none, json!([]));
    let (_, none) = platform
        .ops_get(&platform.orders, "/dead-letters?older_than_seconds=3600")
        .await;
    assert_eq!(none, json!([]));

    // The cause is fixed; the message is redriven, twice by a hurried
    // operator: it is published once and applied once.
    platform
        .orders_sql("ALTER TABLE orders.inbox_away RENAME TO inbox")
        .await;
    let letter = dead["id"].as_i64().unwrap();
    let (status, redriven) = platform
        .ops_post(
            &platform.orders,
            &format!("/dead-letters/{letter}/redrive"),
            None,
        )
        .await;
    assert_eq!(status, 200, "{redriven}");
    assert_eq!(redriven["state"], "redriven");
    assert_eq!(redriven["redrives"], 1);
    let (status, again) = platform
        .ops_post(
            &platform.orders,
            &format!("/dead-letters/{letter}/redrive"),
            None,
        )
        .await;
    assert_eq!(status, 200, "{again}");
    assert_eq!(again["redrives"], 1, "a second redrive publishes nothing");
    platform
        .wait_for("dora", &id, "the redriven payment", |o| {
            o["status"] == "paid"
        })
        .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        types(&platform.history("dora", &id).await),
        ["order.created", "order.paid"],
        "applied exactly once"
    );
    let (_, open) = platform.ops_get(&platform.orders, "/dead-letters").await;
    assert_eq!(open, json!([]), "nothing is left dead");

    // Audited once, with who did it.
    let entries = audit(&platform, &platform.orders).await;
    assert_eq!(entries.len(), 1, "{entries:?}");
    assert_eq!(entries[0]["operator"], "oncall");
    assert_eq!(entries[0]["action"], "dead_letter.redrive");
    assert_eq!(entries[0]["target"], format!("dead_letter:{letter}"));
    assert!(
        crate::helpers::captured_logs().iter().any(|line| {
            line["fields"]["ops.action"] == "dead_letter.redrive"
                || line["ops.action"] == "dead_letter.redrive"
        }),
        "the action is in the logs too"
    );
}

#[tokio::test]
async fn a_redriven_message_that_fails_again_comes_back_with_its_reason_and_can_be_discarded() {
    let platform = spawn_platform(Options::default()).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let order = platform.create_order("eli", None).await;
    let id = order["id"].as_str().unwrap().to_owned();
    let forged = crate::hostile::success(&order, "/evil", &id, "payment.successful");
    platform
        .broker
        .publish(
            &platform.names.payments_exchange,
            "payment.successful",
            &forged,
            Default::default(),
        )
        .await
        .unwrap();
    let dead = platform.next_dead_letter(&platform.orders, 0).await;
    let letter = dead["id"].as_i64().unwrap();
    assert!(dead["reason"].as_str().unwrap().contains("source `/evil`"));

    let (status, _) = platform
        .ops_post(
            &platform.orders,
            &format!("/dead-letters/{letter}/redrive"),
            None,
        )
        .await;
    assert_eq!(status, 200);
    // It fails again and is back, in the same row, dead once more.
    wait_until("the letter to come back", async || {
        let (_, back) = platform
            .ops_get(&platform.orders, &format!("/dead-letters/{letter}"))
            .await;
        back["state"] == "dead" && back["times_dead_lettered"] == 2
    })
    .await;
    let (_, back) = platform
        .ops_get(&platform.orders, &format!("/dead-letters/{letter}"))
        .await;
    assert_eq!(back["redrives"], 1);
    assert!(back["reason"].as_str().unwrap().contains("source `/evil`"));
    let (_, all) = platform
        .ops_get(&platform.orders, "/dead-letters?state=all")
        .await;
    assert_eq!(
        all.as_array().unwrap().len(),
        1,
        "one row per message: {all}"
    );
    assert_eq!(platform.order("eli", &id).await["status"], "pending");

    // Discarded for good: a redrive is then refused.
    let (status, discarded) = platform
        .ops_post(
            &platform.orders,
            &format!("/dead-letters/{letter}/discard"),
            None,
        )
        .await;
    assert_eq!(status, 200, "{discarded}");
    assert_eq!(discarded["state"], "discarded");
    let (status, refused) = platform
        .ops_post(
            &platform.orders,
            &format!("/dead-letters/{letter}/redrive"),
            None,
        )
        .await;
    assert_eq!(status, 409, "{refused}");
    assert_eq!(refused["type"], "dead_letter_discarded");
    let (status, missing) = platform
        .ops_post(&platform.orders, "/dead-letters/999999/redrive", None)
        .await;
    assert_eq!(status, 404, "{missing}");
    let actions: Vec<Value> = audit(&platform, &platform.orders)
        .await
        .iter()
        .map(|entry| entry["action"].clone())
        .collect();
    assert_eq!(actions, ["dead_letter.discard", "dead_letter.redrive"]);
}

#[tokio::test]
async fn a_job_parked_while_payments_was_down_is_retried_and_charges_once() {
    let mut platform = spawn_platform(Options {
        payments_down: true,
        max_job_attempts: Some(2),
        ..Options::default()
    })
    .await;
    let order = platform.create_order("fay", Some("tok_visa")).await;
    let id = order["id"].as_str().unwrap().to_owned();
    let mut parked = Value::Null;
    wait_until("the pay job to be parked", async || {
        let (_, jobs) = platform.ops_get(&platform.orders, "/jobs").await;
        parked = jobs[0].clone();
        parked["kind"] == "pay"
    })
    .await;
    assert_eq!(parked["state"], "parked");
    assert_eq!(parked["attempts"], 2);
    assert!(parked["last_error"].as_str().is_some_and(|e| !e.is_empty()));
    assert_eq!(parked["payload"]["token"], "[masked]", "{parked}");
    let job = parked["id"].as_i64().unwrap();
    let (status, inspected) = platform
        .ops_get(&platform.orders, &format!("/jobs/{job}"))
        .await;
    assert_eq!(status, 200);
    assert_eq!(inspected["key"], parked["key"]);

    // A second order's charge is parked too; the shop settles that one by
    // hand, so its job is discarded.
    let other = platform.create_order("fay", Some("tok_visa")).await;
    let other_id = other["id"].as_str().unwrap().to_owned();
    let mut other_job = Value::Null;
    wait_until("the second pay job to be parked", async || {
        let (_, jobs) = platform.ops_get(&platform.orders, "/jobs").await;
        other_job = jobs
            .as_array()
            .unwrap()
            .iter()
            .find(|j| j["payload"]["order_id"] == other_id.as_str())
            .cloned()
            .unwrap_or(Value::Null);
        other_job["state"] == "parked"
    })
    .await;
    let other_job = other_job["id"].as_i64().unwrap();
    let (status, discarded) = platform
        .ops_post(
            &platform.orders,
            &format!("/jobs/{other_job}/discard"),
            None,
        )
        .await;
    assert_eq!(status, 200, "{discarded}");
    let (status, _) = platform
        .ops_post(
            &platform.orders,
            &format!("/jobs/{other_job}/discard"),
            None,
        )
        .await;
    assert_eq!(status, 404, "discarded once");

    platform.start_payments().await;
    let (status, retried) = platform
        .ops_post(&platform.orders, &format!("/jobs/{job}/retry"), None)
        .await;
    assert_eq!(status, 200, "{retried}");
    platform
        .wait_for("fay", &id, "the retried charge", |o| o["status"] == "paid")
        .await;
    let (status, gone) = platform
        .ops_get(&platform.orders, &format!("/jobs/{job}"))
        .await;
    assert_eq!(status, 404, "a finished job is deleted: {gone}");
    let (status, _) = platform
        .ops_post(&platform.orders, &format!("/jobs/{job}/retry"), None)
        .await;
    assert_eq!(status, 404);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let charges = platform.charges_per_order().await;
    assert_eq!(charges.get(&id), Some(&1));
    assert_eq!(
        charges.get(&other_id),
        None,
        "the discarded job charged nothing"
    );
    assert_eq!(platform.order("fay", &other_id).await["status"], "pending");
    let entries = audit(&platform, &platform.orders).await;
    assert_eq!(entries[0]["action"], "job.retry");
    assert_eq!(entries[0]["target"], format!("job:{job}"));
    assert_eq!(entries[1]["action"], "job.discard");
    assert_eq!(entries[1]["detail"]["payload"]["token"], "[masked]");
}

#[tokio::test]
async fn a_range_of_the_outbox_is_published_again_with_the_same_ids() {
    let platform = spawn_platform(Options::default()).await;
    let order = platform.create_order("gus", None).await;
    let id = order["id"].as_str().unwrap().to_owned();
    wait_until("the relay to publish", async || {
        let (_, outbox) = platform.ops_get(&platform.orders, "/outbox").await;
        outbox["backlog"] == 0 && outbox["last_position"].as_i64().is_some()
    })
    .await;
    let (_, outbox) = platform.ops_get(&platform.orders, "/outbox").await;
    assert_eq!(outbox["unpublished_by_type"], json!([]));
    let last = outbox["last_position"].as_i64().unwrap();

    let mut subscriber = platform
        .broker
        .subscribe(&[(platform.names.orders_exchange.as_str(), "order.#")])
        .await
        .unwrap();
    let (status, marked) = platform
        .ops_post(
            &platform.orders,
            "/outbox/republish",
            Some(json!({"from_position": last, "to_position": last})),
        )
        .await;
    assert_eq!(status, 200, "{marked}");
    assert_eq!(marked["marked"], 1);
    let again: Value =
        serde_json::from_slice(&subscriber.next(Duration::from_secs(10)).await.unwrap()).unwrap();
    assert_eq!(again["subject"], id.as_str());
    assert_eq!(again["type"], "order.created");
    let history = platform.history("gus", &id).await;
    assert_eq!(again["id"], history[0]["id"], "the same event, the same id");

    for bad in [
        json!({"from_position": 5, "to_position": 4}),
        json!({"from_position": 0, "to_position": 4}),
        json!({"from_position": 1, "to_position": 200_000}),
        json!({"from_position": 1}),
    ] {
        let (status, problem) = platform
            .ops_post(&platform.orders, "/outbox/republish", Some(bad))
            .await;
        assert_eq!(status, 400, "{problem}");
    }
}

#[tokio::test]
async fn a_projection_row_corrupted_by_hand_is_reported_then_rebuilt_from_the_events() {
    let platform = spawn_platform(Options::default()).await;
    let sound = platform.create_order("hal", Some("tok_visa")).await;
    let sound_id = sound["id"].as_str().unwrap().to_owned();
    platform
        .wait_for("hal", &sound_id, "payment", |o| o["status"] == "paid")
        .await;
    let broken = platform.create_order("hal", None).await;
    let id = broken["id"].as_str().unwrap().to_owned();
    platform
        .orders_sql(&format!(
            "UPDATE orders.orders SET status = 'delivered', total_minor = 1 WHERE id = '{id}'; \
             UPDATE orders.order_items SET quantity = 9 WHERE order_id = '{id}' AND line = 0"
        ))
        .await;

    // Reported, field by field, and nothing changed yet.
    let (status, report) = platform
        .ops_post(&platform.orders, "/projections/rebuild", None)
        .await;
    assert_eq!(status, 200, "{report}");
    assert_eq!(report["checked"], 2, "{report}");
    assert_eq!(report["differing"], 1, "the sound order is sound: {report}");
    assert_eq!(report["applied"], false);
    let fields: Vec<&str> = report["differences"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["field"].as_str().unwrap())
        .collect();
    assert!(fields.contains(&"orders.status"), "{fields:?}");
    assert!(fields.contains(&"orders.total_minor"), "{fields:?}");
    assert!(fields.contains(&"order_items[0].quantity"), "{fields:?}");
    let status_difference = report["differences"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["field"] == "orders.status")
        .unwrap();
    assert_eq!(status_difference["current"], "delivered");
    assert_eq!(status_difference["rebuilt"], "pending");
    // Lists filter by the stored status: the broken row is listed as
    // delivered.
    let delivered = |platform: &Platform| {
        let client = platform.client.clone();
        let url = format!("{}/api/v1/orders?status=delivered", platform.orders);
        async move {
            let body: Value = client
                .get(url)
                .bearer_auth(crate::helpers::orders_token("hal"))
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            body["data"].as_array().unwrap().len()
        }
    };
    assert_eq!(delivered(&platform).await, 1);

    // Applied: restored, the difference reported once more; then clean.
    let (status, applied) = platform
        .ops_post(
            &platform.orders,
            "/projections/rebuild",
            Some(json!({"order_id": id, "apply": true})),
        )
        .await;
    assert_eq!(status, 200, "{applied}");
    assert_eq!(applied["applied"], true);
    assert_eq!(applied["differences"], report["differences"]);
    assert_eq!(delivered(&platform).await, 0, "restored");
    let (_, clean) = platform
        .ops_post(&platform.orders, "/projections/rebuild", None)
        .await;
    assert_eq!(clean["differing"], 0, "{clean}");
    // The order still takes commands on its rebuilt rows.
    let cancelled = platform.cancel("hal", &id).await;
    assert_eq!(cancelled["status"], "cancelled", "{cancelled}");
    let entries = audit(&platform, &platform.orders).await;
    assert_eq!(entries.len(), 1, "only the applied rebuild is an action");
    assert_eq!(entries[0]["action"], "projection.rebuild");
}

/// The story of an order paid, partly refunded and cancelled (the rest
/// refunded): both services' steps, each once, in time order.
pub async fn refunded_and_cancelled_order(platform: &Platform) -> String {
    let order = platform.create_order("ivy", Some("tok_visa")).await;
    let id = order["id"].as_str().unwrap().to_owned();
    platform
        .wait_for("ivy", &id, "payment", |o| o["status"] == "paid")
        .await;
    let payment = platform.payments_of("ivy", &id).await[0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let (status, refund) = platform.refund(&payment, Some("1.00")).await;
    assert_eq!(status, 201, "{refund}");
    platform
        .wait_for("ivy", &id, "the partial refund", |o| {
            o["payment_status"] == "partially_refunded"
        })
        .await;
    let cancelled = platform.cancel("ivy", &id).await;
    assert_eq!(cancelled["status"], "cancelled", "{cancelled}");
    platform
        .wait_for("ivy", &id, "the full refund", |o| {
            o["payment_status"] == "refunded"
        })
        .await;
    id
}

#[tokio::test]
async fn the_story_of_a_paid_partly_refunded_cancelled_order_lists_each_step_once_in_order() {
    let platform = spawn_platform(Options::default()).await;
    let id = refunded_and_cancelled_order(&platform).await;
    let mut story = Value::Null;
    // Payments' last event reaches its outbox a moment after orders saw it.
    for _ in 0..100 {
        let (status, told) = platform
            .ops_get(&platform.orders, &format!("/orders/{id}"))
            .await;
        assert_eq!(status, 200, "{told}");
        story = told;
        let refunds = story["steps"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|s| s["name"] == "payment.refunded")
            .count();
        if refunds == 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(story["missing"], json!([]), "{story}");
    assert_eq!(story["status"], "cancelled");
    assert_eq!(story["payment_status"], "refunded");
    let steps = story["steps"].as_array().unwrap();
    let names: Vec<String> = steps
        .iter()
        .map(|s| {
            format!(
                "{}:{}",
                s["service"].as_str().unwrap(),
                s["name"].as_str().unwrap()
            )
        })
        .collect();
    let orders_events: Vec<&String> = names.iter().filter(|n| n.starts_with("orders:")).collect();
    assert_eq!(
        orders_events,
        [
            "orders:order.created",
            "orders:order.paid",
            "orders:order.refunded",
            "orders:order.cancelled",
            "orders:order.refunded"
        ],
        "{names:?}"
    );
    let payments_events: Vec<&String> = names
        .iter()
        .filter(|n| n.starts_with("payments:"))
        .collect();
    assert_eq!(
        payments_events,
        [
            "payments:payment.successful",
            "payments:payment.refunded",
            "payments:payment.refunded"
        ],
        "{names:?}"
    );
    let times: Vec<&str> = steps.iter().map(|s| s["at"].as_str().unwrap()).collect();
    let parsed: Vec<time::OffsetDateTime> = times
        .iter()
        .map(|t| {
            time::OffsetDateTime::parse(t, &time::format_description::well_known::Rfc3339).unwrap()
        })
        .collect();
    assert!(
        parsed.windows(2).all(|w| w[0] <= w[1]),
        "in time order: {times:?}"
    );
    let position = |name: &str| names.iter().position(|n| n == name).unwrap();
    assert!(position("orders:order.created") < position("payments:payment.successful"));
    assert!(position("payments:payment.successful") < position("orders:order.paid"));
    assert!(
        steps.iter().all(|s| s["kind"] == "event"),
        "no job or dead letter is left"
    );
    assert!(
        steps
            .iter()
            .filter(|s| s["service"] == "orders")
            .all(|s| s["trace_id"].as_str().is_some_and(|t| t.len() == 32)),
        "every step of orders names its trace: {steps:?}"
    );
    assert_eq!(story["payments"].as_array().unwrap().len(), 1);
    assert_eq!(story["payments"][0]["status"], "refunded");

    // The same story as a person meets it: the page in headless Chromium.
    let page = browse_timeline(
        &format!("{}/ops/orders/{id}", platform.orders),
        &ops_token(),
    )
    .await;
    assert_eq!(page["status"], 200, "{page}");
    assert!(
        page["heading"]
            .as_str()
            .unwrap()
            .contains(story["order_number"].as_str().unwrap()),
        "{page}"
    );
    assert_eq!(page["order_status"], "cancelled");
    assert_eq!(page["payment_status"], "refunded");
    assert_eq!(page["missing"], json!([]));
    let rows = page["steps"].as_array().unwrap();
    assert_eq!(rows.len(), steps.len(), "every step is shown once: {page}");
    for (row, step) in rows.iter().zip(steps) {
        assert_eq!(row["visible"], true);
        let cells = row["cells"].as_array().unwrap();
        assert_eq!(cells[0], step["at"], "in the story's order: {page}");
        assert_eq!(cells[1], step["service"]);
        assert_eq!(cells[3], step["name"]);
    }
    let payments_rows = page["payments"].as_array().unwrap();
    assert_eq!(payments_rows.len(), 1);
    assert_eq!(payments_rows[0]["cells"][1], "refunded");

    // Without payments' scope, payments' side is said to be missing.
    let orders_only = TokenSpec::new("orders", "oncall", &["orders.ops"]).sign();
    let partial: Value = platform
        .client
        .get(format!("{}/api/v1/ops/orders/{id}", platform.orders))
        .bearer_auth(orders_only)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(partial["missing"].as_array().unwrap().len(), 1, "{partial}");
    assert!(
        partial["steps"]
            .as_array()
            .unwrap()
            .iter()
            .all(|s| s["service"] == "orders")
    );
    let (status, _) = platform
        .ops_get(
            &platform.orders,
            &format!("/orders/{}", uuid::Uuid::now_v7()),
        )
        .await;
    assert_eq!(status, 404);
}

/// What headless Chromium shows of a timeline page
/// (`deploy/tools/browser/timeline.mjs`); a screenshot is left in the
/// temporary directory.
async fn browse_timeline(url: &str, token: &str) -> Value {
    let (url, token) = (url.to_owned(), token.to_owned());
    // Blocking, off the test's runtime (it runs the services' proxies).
    tokio::task::spawn_blocking(move || browse(&url, &token))
        .await
        .unwrap()
}

fn browse(url: &str, token: &str) -> Value {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let screenshot = std::env::temp_dir().join(format!("timeline-{}.png", uuid::Uuid::now_v7()));
    let output = std::process::Command::new(root.join("deploy/tools/browser/run.sh"))
        .args(["timeline.mjs", url, token])
        .arg(&screenshot)
        .output()
        .expect("running the browser check (needs node and chromium)");
    assert!(
        output.status.success(),
        "the browser check failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).unwrap()
}

#[tokio::test]
async fn without_the_ops_scope_every_console_route_is_forbidden() {
    let platform = spawn_platform(Options::default()).await;
    let order = platform.create_order("jo", None).await;
    let id = order["id"].as_str().unwrap();
    let payments = platform.payments.clone().unwrap();
    let shared = [
        ("GET", "/api/v1/ops/dead-letters".to_owned()),
        ("GET", "/api/v1/ops/dead-letters/1".to_owned()),
        ("POST", "/api/v1/ops/dead-letters/1/redrive".to_owned()),
        ("POST", "/api/v1/ops/dead-letters/1/discard".to_owned()),
        ("GET", "/api/v1/ops/jobs".to_owned()),
        ("GET", "/api/v1/ops/jobs/1".to_owned()),
        ("POST", "/api/v1/ops/jobs/1/retry".to_owned()),
        ("POST", "/api/v1/ops/jobs/1/discard".to_owned()),
        ("GET", "/api/v1/ops/outbox".to_owned()),
        ("POST", "/api/v1/ops/outbox/republish".to_owned()),
        ("GET", "/api/v1/ops/audit".to_owned()),
        ("GET", format!("/api/v1/ops/orders/{id}")),
    ];
    let orders_only = [
        ("POST", "/api/v1/ops/projections/rebuild".to_owned()),
        ("GET", format!("/ops/orders/{id}")),
    ];
    // Every other scope of the platform, admin included.
    let strangers = [
        TokenSpec::new(
            "orders",
            "boss",
            &[
                "orders.read",
                "orders.write",
                "orders.admin",
                "orders.read_all",
            ],
        )
        .also_for("payments")
        .sign(),
        TokenSpec::new(
            "payments",
            "boss",
            &["payments.read", "payments.write", "payments.admin"],
        )
        .also_for("orders")
        .sign(),
        // The other service's console scope does not open this one.
        TokenSpec::new("orders", "oncall", &["payments.ops"])
            .also_for("payments")
            .sign(),
    ];
    let mut tried = 0;
    for (base, routes) in [
        (
            &platform.orders,
            shared.iter().chain(&orders_only).collect::<Vec<_>>(),
        ),
        (&payments, shared.iter().collect()),
    ] {
        for token in &strangers {
            for (method, path) in &routes {
                // The third token holds payments' own scope.
                if base == &payments && token == &strangers[2] {
                    continue;
                }
                let request = match *method {
                    "GET" => platform.client.get(format!("{base}{path}")),
                    _ => platform
                        .client
                        .post(format!("{base}{path}"))
                        .json(&json!({"from_position": 1, "to_position": 1})),
                };
                let response = request.bearer_auth(token).send().await.unwrap();
                assert_eq!(response.status(), 403, "{method} {base}{path}");
                tried += 1;
            }
        }
        let anonymous = platform
            .client
            .get(format!("{base}/api/v1/ops/dead-letters"))
            .send()
            .await
            .unwrap();
        assert_eq!(anonymous.status(), 401);
    }
    assert_eq!(tried, 3 * 14 + 2 * 12);
    // And with it, the same routes answer.
    let (status, _) = platform.ops_get(&platform.orders, "/jobs").await;
    assert_eq!(status, 200);
    let page = platform
        .client
        .get(format!("{}/ops/orders/{id}", platform.orders))
        .bearer_auth(ops_token())
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 200);
    assert!(
        page.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
}
