//! End to end: orders and payments over HTTP and RabbitMQ, with faults.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod helpers;
mod hostile;
mod instances;
mod ops;
mod privacy;

use std::{collections::HashMap, time::Duration};

use contracts::{
    cloud::{self, EventMeta},
    payment::PaymentData,
};
use helpers::{Options, spawn_platform, types};
use serde_json::{Value, json};
use test_support::proxy::TcpProxy;
use uuid::Uuid;

#[tokio::test]
async fn an_order_created_with_a_good_card_becomes_paid() {
    let platform = spawn_platform(Options::default()).await;

    let order = platform.create_order("alice", Some("tok_visa")).await;
    let id = order["id"].as_str().unwrap();

    let paid = platform
        .wait_for("alice", id, "paid", |o| o["status"] == "paid")
        .await;
    assert_eq!(paid["payment_status"], "paid");
    assert_eq!(
        types(&platform.history("alice", id).await),
        ["order.created", "order.paid"]
    );
    let payments = platform.payments_of("alice", id).await;
    assert_eq!(payments.len(), 1, "charged exactly once");
    assert_eq!(payments[0]["status"], "succeeded");
    assert_eq!(payments[0]["amount"], "64.98");
    let trail = platform.history("alice", id).await;
    assert_eq!(trail[1]["data"]["payment_id"], payments[0]["id"]);
}

#[tokio::test]
async fn a_declined_order_stays_pending_with_the_failure_and_is_paid_later() {
    let platform = spawn_platform(Options::default()).await;
    let order = platform
        .create_order("bob", Some("tok_chargeDeclined"))
        .await;
    let id = order["id"].as_str().unwrap();

    let failed = platform
        .wait_for("bob", id, "the failure", |o| {
            o["payment_status"] == "failed"
        })
        .await;
    assert_eq!(failed["status"], "pending");
    let history = platform.history("bob", id).await;
    assert_eq!(types(&history), ["order.created", "order.payment_failed"]);
    assert_eq!(history[1]["data"]["reason"], "card_declined");

    // The client pays the pending order itself, with a good card.
    let response = platform.pay("bob", &order, "tok_visa", "bob-retry-1").await;
    assert_eq!(response.status(), 201);
    let paid = platform
        .wait_for("bob", id, "paid", |o| o["status"] == "paid")
        .await;
    assert_eq!(paid["payment_status"], "paid");
}

#[tokio::test]
async fn insufficient_funds_and_provider_errors_are_recorded_as_failures() {
    let platform = spawn_platform(Options::default()).await;
    for (token, reason) in [
        ("tok_chargeDeclinedInsufficientFunds", "insufficient_funds"),
        ("tok_processingError", "processing_error"),
    ] {
        let order = platform.create_order("carol", Some(token)).await;
        let id = order["id"].as_str().unwrap();
        platform
            .wait_for("carol", id, reason, |o| o["payment_status"] == "failed")
            .await;
        let history = platform.history("carol", id).await;
        assert_eq!(history[1]["data"]["reason"], reason);
    }
}

#[tokio::test]
async fn cancelling_a_paid_order_refunds_it() {
    let platform = spawn_platform(Options::default()).await;
    let order = platform.create_order("dave", Some("tok_visa")).await;
    let id = order["id"].as_str().unwrap();
    platform
        .wait_for("dave", id, "paid", |o| o["status"] == "paid")
        .await;

    let cancelled = platform.cancel("dave", id).await;
    assert_eq!(cancelled["status"], "cancelled");

    let refunded = platform
        .wait_for("dave", id, "the refund", |o| {
            o["payment_status"] == "refunded"
        })
        .await;
    assert_eq!(refunded["status"], "cancelled");
    assert_eq!(
        types(&platform.history("dave", id).await),
        [
            "order.created",
            "order.paid",
            "order.cancelled",
            "order.refunded"
        ]
    );
    let payments = platform.payments_of("dave", id).await;
    assert_eq!(payments[0]["status"], "refunded");
}

#[tokio::test]
async fn a_partial_refund_shows_on_the_order_and_one_in_full_stops_its_shipment() {
    let platform = spawn_platform(Options::default()).await;
    let order = platform.create_order("rita", Some("tok_visa")).await;
    let id = order["id"].as_str().unwrap();
    platform
        .wait_for("rita", id, "paid", |o| o["status"] == "paid")
        .await;
    let payment = platform.payments_of("rita", id).await[0]["id"]
        .as_str()
        .unwrap()
        .to_owned();

    // One unit's worth back: the order is still paid, and says so.
    let (status, refund) = platform.refund(&payment, Some("1.00")).await;
    assert_eq!(status, 201, "{refund}");
    let partly = platform
        .wait_for("rita", id, "the partial refund", |o| {
            o["payment_status"] == "partially_refunded"
        })
        .await;
    assert_eq!(partly["status"], "paid");
    let history = platform.history("rita", id).await;
    let recorded = history.last().unwrap();
    assert_eq!(recorded["type"], "order.refunded");
    assert_eq!(recorded["data"]["amount"]["amount"], "1.00");
    assert_eq!(recorded["data"]["refund_id"], refund["id"]);

    // The rest back: nothing is shipped for money given back.
    let (status, _) = platform.refund(&payment, None).await;
    assert_eq!(status, 201);
    platform
        .wait_for("rita", id, "the full refund", |o| {
            o["payment_status"] == "refunded"
        })
        .await;
    assert_eq!(platform.patch(id, "shipped").await, 409);
    let order = platform.order("rita", id).await;
    assert_eq!(order["status"], "paid");
    assert_eq!(
        types(&platform.history("rita", id).await),
        [
            "order.created",
            "order.paid",
            "order.refunded",
            "order.refunded"
        ]
    );
    // It can still be cancelled; nothing more is refunded.
    assert_eq!(platform.cancel("rita", id).await["status"], "cancelled");
    tokio::time::sleep(Duration::from_millis(500)).await;
    let payments = platform.payments_of("rita", id).await;
    assert_eq!(payments[0]["status"], "refunded");
    assert_eq!(payments[0]["refunded_amount"], order["total"]);
}

#[tokio::test]
async fn a_subscriber_sees_every_event_as_valid_cloudevents_in_order() {
    let platform = spawn_platform(Options::default()).await;
    let mut subscriber = platform
        .broker
        .subscribe(&[
            (&platform.names.orders_exchange, "order.*"),
            (&platform.names.payments_exchange, "payment.*"),
        ])
        .await
        .unwrap();

    let order = platform.create_order("erin", Some("tok_visa")).await;
    let id = order["id"].as_str().unwrap();
    platform
        .wait_for("erin", id, "paid", |o| o["status"] == "paid")
        .await;
    assert_eq!(platform.patch(id, "shipped").await, 200);
    assert_eq!(platform.patch(id, "delivered").await, 200);

    // order.created, payment.successful, order.paid, order.shipped, order.delivered
    let messages = subscriber.collect(5, Duration::from_secs(10)).await;
    let mut order_events = Vec::new();
    let mut payment_events = Vec::new();
    for body in &messages {
        let raw: Value = serde_json::from_slice(body).unwrap();
        assert_eq!(raw["specversion"], "1.0");
        // The data matches the checked-in JSON Schema its dataschema names.
        let event_type = raw["type"].as_str().unwrap();
        let schema_file = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../contracts/schemas")
            .join(contracts::schema::file_name(event_type));
        let schema: Value =
            serde_json::from_str(&std::fs::read_to_string(&schema_file).unwrap()).unwrap();
        assert_eq!(raw["dataschema"], schema["$id"]);
        assert!(
            jsonschema::validate(&schema, &json!({})).is_err(),
            "the schema can fail"
        );
        if let Err(error) = jsonschema::validate(&schema, &raw["data"]) {
            panic!(
                "{event_type} does not match {}: {error}",
                schema_file.display()
            );
        }
        assert_eq!(raw["subject"], id);
        let (meta, _): (EventMeta, Value) = cloud::parse(body).unwrap();
        if meta.source == "/orders" {
            let data: contracts::order::OrderData =
                serde_json::from_value(raw["data"].clone()).unwrap();
            assert_eq!(data.id.to_string(), id);
            assert!(meta.data_schema.is_some());
            order_events.push((meta.sequence.unwrap(), meta.event_type));
        } else {
            let data: PaymentData = serde_json::from_value(raw["data"].clone()).unwrap();
            assert_eq!(data.order_id.to_string(), id);
            payment_events.push(meta.event_type);
        }
    }
    assert_eq!(
        order_events,
        vec![
            (1, "order.created".to_owned()),
            (2, "order.paid".to_owned()),
            (3, "order.shipped".to_owned()),
            (4, "order.delivered".to_owned()),
        ],
        "gap-free and in order"
    );
    assert_eq!(payment_events, ["payment.successful"]);
    assert!(
        subscriber.next(Duration::from_millis(500)).await.is_none(),
        "nothing extra"
    );
}

#[tokio::test]
async fn an_order_created_while_payments_is_down_is_paid_once_it_is_back() {
    let mut platform = spawn_platform(Options {
        payments_down: true,
        ..Options::default()
    })
    .await;
    let order = platform.create_order("frank", Some("tok_visa")).await;
    let id = order["id"].as_str().unwrap();
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert_eq!(platform.order("frank", id).await["status"], "pending");

    platform.start_payments().await;

    platform
        .wait_for("frank", id, "paid", |o| o["status"] == "paid")
        .await;
    assert_eq!(platform.payments_of("frank", id).await.len(), 1);
}

#[tokio::test]
async fn events_written_while_the_broker_is_unreachable_are_all_delivered_once_it_is_back() {
    let broker_address = "127.0.0.1:5672".parse().unwrap();
    let proxy = TcpProxy::start(broker_address).await.unwrap();
    let proxied = test_support::broker::amqp_url()
        .replace("127.0.0.1:5672", &format!("127.0.0.1:{}", proxy.port));
    let platform = spawn_platform(Options {
        orders_amqp_url: Some(proxied),
        ..Options::default()
    })
    .await;
    let mut subscriber = platform
        .broker
        .subscribe(&[(&platform.names.orders_exchange, "order.created")])
        .await
        .unwrap();
    // Let the relay connect once, then cut it off.
    tokio::time::sleep(Duration::from_millis(500)).await;
    proxy.cut();

    let mut created = Vec::new();
    for _ in 0..10 {
        created.push(
            platform.create_order("gina", None).await["id"]
                .as_str()
                .unwrap()
                .to_owned(),
        );
    }
    assert!(
        subscriber.next(Duration::from_millis(700)).await.is_none(),
        "nothing gets through"
    );

    proxy.restore();
    let messages = subscriber.collect(10, Duration::from_secs(15)).await;
    let mut delivered: Vec<String> = messages
        .iter()
        .map(|body| cloud::parse::<Value>(body).unwrap().0.subject)
        .collect();
    delivered.sort();
    delivered.dedup();
    created.sort();
    assert_eq!(delivered, created, "every event, once the broker is back");
}

fn payment_event(
    order_id: &str,
    event_type: &str,
    event_id: Uuid,
    reason: Option<&str>,
) -> Vec<u8> {
    let now = time::OffsetDateTime::now_utc();
    let data = PaymentData {
        id: Uuid::now_v7(),
        order_id: Uuid::parse_str(order_id).unwrap(),
        user_id: "henry".into(),
        amount: "64.98".into(),
        currency: "USD".into(),
        method: "card".into(),
        status: contracts::payment::PaymentStatus::Failed,
        failure_reason: reason.map(str::to_owned),
        provider_reference: None,
        capture_method: None,
        captured_amount: None,
        refunded_amount: None,
        refund: None,
        created_at: now,
        updated_at: now,
    };
    let meta = EventMeta {
        id: event_id,
        source: "/payments".into(),
        event_type: event_type.into(),
        subject: order_id.into(),
        time: now,
        data_schema: None,
        sequence: None,
        traceparent: None,
    };
    cloud::to_json(&cloud::build(&meta, &data).unwrap()).unwrap()
}

#[tokio::test]
async fn a_duplicated_delivery_has_one_effect() {
    let platform = spawn_platform(Options::default()).await;
    let order = platform.create_order("henry", None).await;
    let id = order["id"].as_str().unwrap();
    let body = payment_event(id, "payment.failed", Uuid::now_v7(), Some("card_declined"));

    for _ in 0..3 {
        platform
            .broker
            .publish(
                &platform.names.payments_exchange,
                "payment.failed",
                &body,
                Default::default(),
            )
            .await
            .unwrap();
    }

    platform
        .wait_for("henry", id, "the failure", |o| {
            o["payment_status"] == "failed"
        })
        .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        types(&platform.history("henry", id).await),
        ["order.created", "order.payment_failed"],
        "the same event three times is recorded once"
    );
}

#[tokio::test]
async fn a_poison_message_ends_in_the_dead_letter_queue() {
    let platform = spawn_platform(Options::default()).await;
    // Let the consumer declare its queue before publishing.
    tokio::time::sleep(Duration::from_millis(500)).await;
    platform
        .broker
        .publish(
            &platform.names.payments_exchange,
            "payment.successful",
            b"{not json",
            Default::default(),
        )
        .await
        .unwrap();

    // Kept by the console, its text shown as it came.
    let dead = platform.next_dead_letter(&platform.orders, 0).await;
    assert_eq!(dead["body"], "{not json");
    assert_eq!(dead["state"], "dead");
}

#[tokio::test]
async fn an_event_for_an_unknown_order_is_dead_lettered_not_retried_forever() {
    let platform = spawn_platform(Options::default()).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let body = payment_event(
        &Uuid::now_v7().to_string(),
        "payment.failed",
        Uuid::now_v7(),
        Some("x"),
    );
    platform
        .broker
        .publish(
            &platform.names.payments_exchange,
            "payment.failed",
            &body,
            Default::default(),
        )
        .await
        .unwrap();
    let dead = platform.next_dead_letter(&platform.orders, 0).await;
    assert_eq!(
        dead["body"],
        serde_json::from_slice::<Value>(&body).unwrap()
    );
}

#[tokio::test]
async fn the_same_idempotency_key_charges_once_sequentially_and_concurrently() {
    let platform = spawn_platform(Options::default()).await;
    let order = platform.create_order("ivy", None).await;

    let attempts = futures_util::future::join_all(
        (0..6).map(|_| platform.pay("ivy", &order, "tok_visa", "ivy-key")),
    )
    .await;
    let mut statuses: HashMap<u16, usize> = HashMap::new();
    for response in &attempts {
        *statuses.entry(response.status().as_u16()).or_default() += 1;
    }
    assert!(
        statuses.keys().all(|s| *s == 201 || *s == 409),
        "{statuses:?}"
    );

    let first = platform.pay("ivy", &order, "tok_visa", "ivy-key").await;
    assert_eq!(first.status(), 201);
    assert_eq!(first.headers()["idempotent-replayed"], "true");
    let first_body = first.bytes().await.unwrap();
    let again = platform.pay("ivy", &order, "tok_visa", "ivy-key").await;
    assert_eq!(
        again.bytes().await.unwrap(),
        first_body,
        "replayed byte for byte"
    );

    let changed = json!({"token": "tok_mastercard"});
    let mismatch = platform
        .pay("ivy", &order, changed["token"].as_str().unwrap(), "ivy-key")
        .await;
    assert_eq!(mismatch.status(), 422);

    assert_eq!(
        platform
            .payments_of("ivy", order["id"].as_str().unwrap())
            .await
            .len(),
        1
    );
    platform
        .wait_for("ivy", order["id"].as_str().unwrap(), "paid", |o| {
            o["status"] == "paid"
        })
        .await;
}

#[tokio::test]
async fn two_instances_relay_each_event_once_and_in_order() {
    let mut platform = spawn_platform(Options::default()).await;
    let second = platform.start_another_orders().await;
    let first = platform.orders.clone();
    let mut subscriber = platform
        .broker
        .subscribe(&[(&platform.names.orders_exchange, "order.*")])
        .await
        .unwrap();

    // Writes land on both instances, interleaved.
    let mut ids = Vec::new();
    for round in 0..6 {
        platform.orders = if round % 2 == 0 {
            first.clone()
        } else {
            second.clone()
        };
        let id = platform.create_order("jack", None).await["id"]
            .as_str()
            .unwrap()
            .to_owned();
        ids.push(id);
    }
    for (round, id) in ids.iter().enumerate() {
        platform.orders = if round % 2 == 0 {
            second.clone()
        } else {
            first.clone()
        };
        assert_eq!(platform.patch(id, "paid").await, 200);
        assert_eq!(platform.patch(id, "shipped").await, 200);
    }

    let messages = subscriber.collect(18, Duration::from_secs(10)).await;
    let mut seen_ids = std::collections::HashSet::new();
    let mut sequences: HashMap<String, Vec<u64>> = HashMap::new();
    for body in &messages {
        let (meta, _): (EventMeta, Value) = cloud::parse(body).unwrap();
        assert!(seen_ids.insert(meta.id), "event {} relayed twice", meta.id);
        sequences
            .entry(meta.subject)
            .or_default()
            .push(meta.sequence.unwrap());
    }
    assert_eq!(messages.len(), 18);
    for id in &ids {
        assert_eq!(sequences[id], vec![1, 2, 3], "order {id} in order");
    }
    assert!(subscriber.next(Duration::from_millis(500)).await.is_none());
}

#[tokio::test]
async fn a_late_failure_of_an_earlier_attempt_does_not_undo_a_payment() {
    let platform = spawn_platform(Options::default()).await;
    let order = platform.create_order("kate", None).await;
    let id = order["id"].as_str().unwrap();
    let payment = platform.pay("kate", &order, "tok_visa", "kate-1").await;
    assert_eq!(payment.status(), 201);
    platform
        .wait_for("kate", id, "paid", |o| o["status"] == "paid")
        .await;

    // An older attempt's failure arrives after the success.
    let late = payment_event(id, "payment.failed", Uuid::now_v7(), Some("card_declined"));
    platform
        .broker
        .publish(
            &platform.names.payments_exchange,
            "payment.failed",
            &late,
            Default::default(),
        )
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(700)).await;

    let order = platform.order("kate", id).await;
    assert_eq!(
        (order["status"].as_str(), order["payment_status"].as_str()),
        (Some("paid"), Some("paid"))
    );
    assert_eq!(
        types(&platform.history("kate", id).await),
        ["order.created", "order.paid"]
    );
}

#[tokio::test]
async fn metrics_expose_the_flow_in_prometheus_text() {
    let platform = spawn_platform(Options::default()).await;
    let order = platform.create_order("liam", Some("tok_visa")).await;
    let id = order["id"].as_str().unwrap();
    platform
        .wait_for("liam", id, "paid", |o| o["status"] == "paid")
        .await;

    let scrape = |base: String| {
        let client = platform.client.clone();
        async move {
            let response = client.get(format!("{base}/metrics")).send().await.unwrap();
            assert_eq!(response.status(), 200);
            assert!(
                response.headers()["content-type"]
                    .to_str()
                    .unwrap()
                    .starts_with("text/plain")
            );
            response.text().await.unwrap()
        }
    };
    let orders = scrape(platform.orders.clone()).await;
    for expected in [
        "orders_created_total{currency=\"USD\"}",
        "order_status_transitions_total{from=\"pending\",to=\"paid\"}",
        "order_value_bucket{currency=\"USD\"",
        "http_requests_total{route=\"/api/v1/orders\",method=\"POST\",status=\"201\"}",
        "http_request_duration_seconds_bucket{route=\"/api/v1/orders/{id}\",method=\"GET\"",
        "outbox_published_events_total",
        "outbox_backlog_events",
        "outbox_oldest_unpublished_age_seconds",
        "messages_consumed_total{queue=\"",
        "db_pool_connections{state=\"idle\"}",
    ] {
        assert!(
            orders.contains(expected),
            "orders /metrics lacks {expected}:\n{orders}"
        );
    }
    let payments = scrape(platform.payments.clone().unwrap()).await;
    assert!(
        payments.contains("payments_total{outcome=\"succeeded\"}"),
        "{payments}"
    );
    // Raw paths (with ids) never become labels.
    assert!(!orders.contains(id), "an order id leaked into a label");
}

#[tokio::test]
async fn one_trace_runs_from_the_order_through_payments_and_rabbitmq_to_order_paid() {
    let platform = spawn_platform(Options::default()).await;
    let mut subscriber = platform
        .broker
        .subscribe(&[
            (&platform.names.orders_exchange, "order.*"),
            (&platform.names.payments_exchange, "payment.*"),
        ])
        .await
        .unwrap();
    let trace_id = format!("{:032x}", Uuid::new_v4().as_u128());
    let traceparent = format!("00-{trace_id}-00f067aa0ba902b7-01");

    let response = platform
        .client
        .post(format!("{}/api/v1/orders", platform.orders))
        .bearer_auth(helpers::orders_token("mia"))
        .header("traceparent", &traceparent)
        .json(&json!({
            "currency": "USD",
            "items": [{"product_id": "prod_1", "quantity": 1, "unit_price": "10.00"}],
            "shipping_address": {"first_name": "Mia", "last_name": "W", "line1": "1 Main St",
                                 "city": "Oslo", "postal_code": "0150", "country": "NO"},
            "payment": {"method": "card", "token": "tok_visa"}
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    let order: Value = response.json().await.unwrap();
    let id = order["id"].as_str().unwrap();
    platform
        .wait_for("mia", id, "paid", |o| o["status"] == "paid")
        .await;

    // Every event of the flow continues the client's trace.
    let messages = subscriber.collect(3, Duration::from_secs(10)).await;
    let mut traced = Vec::new();
    for body in &messages {
        let (meta, _): (EventMeta, Value) = cloud::parse(body).unwrap();
        let carried = meta.traceparent.unwrap_or_default();
        assert!(
            carried.contains(&trace_id),
            "{} carries {carried}",
            meta.event_type
        );
        assert_ne!(carried, traceparent, "each hop is a span of its own");
        traced.push(meta.event_type);
    }
    traced.sort();
    assert_eq!(
        traced,
        ["order.created", "order.paid", "payment.successful"]
    );

    // Payments handled it inside the same trace, and said so in its logs.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let logs = helpers::captured_logs();
    let in_trace = |target: &str| {
        logs.iter().any(|line| {
            line["trace_id"] == trace_id.as_str()
                && line["span_id"].is_string()
                && line["target"]
                    .as_str()
                    .unwrap_or_default()
                    .starts_with(target)
        })
    };
    assert!(
        in_trace("payments::"),
        "a payments log line carries the trace id"
    );
    assert!(
        in_trace("orders::messaging"),
        "the consumer's log line carries the trace id"
    );
    let request_line = logs
        .iter()
        .find(|line| line["trace_id"] == trace_id.as_str() && line["request_id"].is_string());
    assert!(
        request_line.is_some(),
        "request log lines carry the request id"
    );
}

/// Starts a charge of `order` (slow provider) and returns the pending answer.
fn pay_in_background(
    platform: &helpers::Platform,
    user: &str,
    order: &Value,
    key: &str,
) -> tokio::task::JoinHandle<reqwest::StatusCode> {
    let client = platform.client.clone();
    let url = format!("{}/api/v1/payments", platform.payments.as_deref().unwrap());
    let bearer = helpers::payments_token(user);
    let body = json!({
        "order_id": order["id"], "amount": order["total"], "currency": order["currency"],
        "method": "card", "token": "tok_visa"
    });
    let key = key.to_owned();
    tokio::spawn(async move {
        client
            .post(url)
            .bearer_auth(bearer)
            .header("Idempotency-Key", key)
            .json(&body)
            .send()
            .await
            .unwrap()
            .status()
    })
}

#[tokio::test]
async fn a_charge_completing_after_cancellation_is_refunded_once() {
    let platform = spawn_platform(Options {
        provider_latency_ms: 600,
        ..Options::default()
    })
    .await;
    let order = platform.create_order("oscar", None).await;
    let id = order["id"].as_str().unwrap();
    // The order is payable when payments checks it; the charge is slow.
    let charging = pay_in_background(&platform, "oscar", &order, "late-1");
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(platform.cancel("oscar", id).await["status"], "cancelled");
    assert_eq!(charging.await.unwrap(), 201);

    // The charge went through after the cancellation: it is refunded, once,
    // and the order's history says so.
    let payments = loop {
        let payments = platform.payments_of("oscar", id).await;
        if payments[0]["status"] == "refunded" {
            break payments;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(payments.len(), 1);
    let history = loop {
        let history = types(&platform.history("oscar", id).await);
        if history.contains(&"order.refunded".to_owned()) {
            break history;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    tokio::time::sleep(Duration::from_millis(500)).await;
    let history_later = types(&platform.history("oscar", id).await);
    assert_eq!(history, history_later, "nothing more happens");
    assert_eq!(
        history.iter().filter(|t| *t == "order.refunded").count(),
        1,
        "{history:?}"
    );
    assert_eq!(history[..2], ["order.created", "order.cancelled"]);
    let order = platform.order("oscar", id).await;
    assert_eq!(order["status"], "cancelled");
    // The order tells the truth about its money: it was given back.
    assert_eq!(order["payment_status"], "refunded");
}

#[tokio::test]
async fn a_charge_of_a_total_changed_meanwhile_is_rejected_refunded_and_the_order_paid_again() {
    let platform = spawn_platform(Options {
        provider_latency_ms: 600,
        ..Options::default()
    })
    .await;
    let order = platform.create_order("petra", None).await;
    let id = order["id"].as_str().unwrap();
    let charging = pay_in_background(&platform, "petra", &order, "stale-total");
    tokio::time::sleep(Duration::from_millis(200)).await;
    // The owner adds a line while the old total is being charged.
    let added = platform
        .client
        .post(format!("{}/api/v1/orders/{id}/items", platform.orders))
        .bearer_auth(helpers::orders_token("petra"))
        .json(&json!({"product_id": "prod_789", "quantity": 1, "unit_price": "1.00"}))
        .send()
        .await
        .unwrap();
    assert_eq!(added.status(), 201);
    let changed: Value = added.json().await.unwrap();
    assert_eq!(charging.await.unwrap(), 201);

    // The charge does not match the new total: rejected, refunded, and the
    // order stays payable.
    let history = loop {
        let history = types(&platform.history("petra", id).await);
        if history.contains(&"order.refunded".to_owned()) {
            break history;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(
        history,
        [
            "order.created",
            "order.item_added",
            "order.payment_rejected",
            "order.refunded"
        ]
    );
    let pending = platform.order("petra", id).await;
    assert_eq!(pending["status"], "pending");
    let first = &platform.payments_of("petra", id).await[0];
    assert_eq!(first["status"], "refunded");

    // Paying the new total pays it (the refunded charge no longer blocks).
    let paid = platform
        .pay("petra", &changed, "tok_visa", "new-total")
        .await;
    assert_eq!(paid.status(), 201, "{:?}", paid.text().await);
    platform
        .wait_for("petra", id, "paid", |o| o["status"] == "paid")
        .await;
}

/// Events are published as soon as they are committed, whichever instance
/// commits them: the one whose relay leads wakes it directly, another one
/// tells it with a NOTIFY after its commit. The relays' safety-net poll is a
/// minute here, so an event left for the poll would miss the deadline.
#[tokio::test]
async fn events_are_published_at_once_from_every_instance() {
    let mut platform = spawn_platform(Options {
        relay_poll_ms: Some(60_000),
        ..Options::default()
    })
    .await;
    let first = platform.orders.clone();
    let second = platform.start_another_orders().await;
    let mut subscriber = platform
        .broker
        .subscribe(&[(&platform.names.orders_exchange, "order.*")])
        .await
        .unwrap();

    let mut placed = Vec::new();
    for (round, base) in [&first, &second, &first, &second].into_iter().enumerate() {
        platform.orders = base.clone();
        let order = platform
            .create_order(&format!("user_{round}"), Some("tok_visa"))
            .await;
        placed.push(order["id"].as_str().unwrap().to_owned());
    }

    // Created on either instance, charged by payments (its relay woken the
    // same way), paid by whichever instance consumed the outcome.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    let mut seen: HashMap<(String, String), usize> = HashMap::new();
    while tokio::time::Instant::now() < deadline {
        let Some(body) = subscriber.next(Duration::from_millis(500)).await else {
            continue;
        };
        let (meta, _): (EventMeta, Value) = cloud::parse(&body).unwrap();
        *seen.entry((meta.subject, meta.event_type)).or_default() += 1;
        let done = placed.iter().all(|id| {
            seen.contains_key(&(id.clone(), "order.created".to_owned()))
                && seen.contains_key(&(id.clone(), "order.paid".to_owned()))
        });
        if done {
            return;
        }
    }
    panic!("not every event arrived within 20 s (the poll is 60 s): {seen:?}");
}

/// A shop that captures at shipment: an order placed with a card of `user`,
/// once it is paid (authorized); its id.
async fn authorized_order(platform: &helpers::Platform, user: &str, card: &str) -> String {
    let order = platform.create_order(user, Some(card)).await;
    let id = order["id"].as_str().unwrap().to_owned();
    let paid = platform
        .wait_for(user, &id, "authorized", |o| o["status"] == "paid")
        .await;
    assert_eq!(paid["payment_status"], "authorized");
    id
}

#[tokio::test]
async fn manual_capture_takes_the_money_when_the_order_ships() {
    let platform = spawn_platform(Options {
        manual_capture: true,
        ..Options::default()
    })
    .await;
    let id = authorized_order(&platform, "maya", "tok_visa").await;
    let payments = platform.payments_of("maya", &id).await;
    assert_eq!(payments[0]["status"], "authorized");
    assert_eq!(payments[0]["captured_amount"], "0.00");

    // Shipping captures first; the order ships when the capture succeeded.
    assert_eq!(platform.ship(&id).await, 202);
    let shipped = platform
        .wait_for("maya", &id, "shipped", |o| o["status"] == "shipped")
        .await;
    assert_eq!(shipped["payment_status"], "paid");
    let payments = platform.payments_of("maya", &id).await;
    assert_eq!(payments[0]["status"], "succeeded");
    assert_eq!(payments[0]["captured_amount"], shipped["total"]);
    // Shipping again changes nothing; it is delivered as before.
    assert_eq!(platform.ship(&id).await, 200);
    assert_eq!(platform.patch(&id, "delivered").await, 200);
    let history = platform.history("maya", &id).await;
    assert_eq!(
        types(&history),
        [
            "order.created",
            "order.paid",
            "order.capture_requested",
            "order.shipped",
            "order.delivered"
        ]
    );
    assert_eq!(history[3]["data"]["carrier"], "UPS");
    assert_eq!(history[3]["data"]["tracking_number"], "1Z999AA10123456784");
    assert_eq!(platform.charges_per_order().await[&id], 1);
}

#[tokio::test]
async fn cancelling_before_capture_voids_the_authorization() {
    let platform = spawn_platform(Options {
        manual_capture: true,
        ..Options::default()
    })
    .await;
    let id = authorized_order(&platform, "vera", "tok_visa").await;
    assert_eq!(platform.cancel("vera", &id).await["status"], "cancelled");
    let voided = platform
        .wait_for("vera", &id, "the void", |o| o["payment_status"] == "voided")
        .await;
    assert_eq!(voided["status"], "cancelled");
    let payments = platform.payments_of("vera", &id).await;
    assert_eq!(payments[0]["status"], "voided");
    assert_eq!(payments[0]["refunded_amount"], "0.00");
    assert_eq!(
        types(&platform.history("vera", &id).await),
        [
            "order.created",
            "order.paid",
            "order.cancelled",
            "order.payment_voided"
        ]
    );
}

#[tokio::test]
async fn a_declined_capture_leaves_the_order_unshipped_with_the_reason() {
    let platform = spawn_platform(Options {
        manual_capture: true,
        ..Options::default()
    })
    .await;
    let id = authorized_order(&platform, "cleo", "tok_captureDeclined").await;
    assert_eq!(platform.ship(&id).await, 202);
    let mut history = Vec::new();
    for _ in 0..100 {
        history = platform.history("cleo", &id).await;
        if types(&history).contains(&"order.capture_failed".to_owned()) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let failed = history.last().unwrap();
    assert_eq!(failed["type"], "order.capture_failed");
    assert!(
        failed["data"]["reason"]
            .as_str()
            .unwrap()
            .contains("capture_declined"),
        "{failed}"
    );
    let order = platform.order("cleo", &id).await;
    assert_eq!(order["status"], "paid");
    assert_eq!(order["payment_status"], "authorized");
    let payments = platform.payments_of("cleo", &id).await;
    assert_eq!(payments[0]["status"], "authorized");
}

#[tokio::test]
async fn a_received_return_of_one_line_refunds_exactly_that_lines_share() {
    let platform = spawn_platform(Options::default()).await;
    let order = platform.create_order("rosa", Some("tok_visa")).await;
    let id = order["id"].as_str().unwrap().to_owned();
    platform
        .wait_for("rosa", &id, "paid", |o| o["status"] == "paid")
        .await;
    let returns = format!("{}/api/v1/orders/{id}/returns", platform.orders);
    let second_line = order["items"][1]["id"].as_str().unwrap().to_owned();
    let ask = |user: &str, quantity: i64| {
        platform
            .client
            .post(&returns)
            .bearer_auth(helpers::orders_token(user))
            .json(&json!({"items": [{"item_id": second_line, "quantity": quantity}], "reason": "damaged"}))
            .send()
    };
    // Not delivered yet: nothing can be returned.
    let early = ask("rosa", 1).await.unwrap();
    assert_eq!(early.status(), 409);
    assert_eq!(platform.ship(&id).await, 200);
    assert_eq!(platform.patch(&id, "delivered").await, 200);

    // Another user cannot; more units than ordered cannot.
    assert_eq!(ask("mallory", 1).await.unwrap().status(), 404);
    assert_eq!(ask("rosa", 2).await.unwrap().status(), 422);
    let requested = ask("rosa", 1).await.unwrap();
    assert_eq!(requested.status(), 201);
    let requested: Value = requested.json().await.unwrap();
    let return_id = requested["returns"][0]["id"].as_str().unwrap().to_owned();
    assert_eq!(requested["returns"][0]["status"], "requested");

    // The owner cannot mark it received; an admin can, once.
    let receive = format!("{returns}/{return_id}/receive");
    let by = |token: String| platform.client.post(&receive).bearer_auth(token).send();
    assert_eq!(
        by(helpers::orders_token("rosa")).await.unwrap().status(),
        403
    );
    let admin = test_support::tokens::TokenSpec::new(
        "orders",
        "ops",
        &["orders.read", "orders.write", "orders.admin"],
    )
    .sign();
    let got: Value = by(admin.clone()).await.unwrap().json().await.unwrap();
    assert_eq!(got["returns"][0]["status"], "received");
    // No tax, no discount: the line's share is its price.
    assert_eq!(got["returns"][0]["refund_amount"], "5.00");
    assert_eq!(by(admin).await.unwrap().status(), 200);

    let refunded = platform
        .wait_for("rosa", &id, "the return's refund", |o| {
            o["payment_status"] == "partially_refunded"
        })
        .await;
    assert_eq!(refunded["status"], "delivered");
    let payments = platform.payments_of("rosa", &id).await;
    assert_eq!(payments[0]["refunded_amount"], "5.00");
    assert_eq!(
        types(&platform.history("rosa", &id).await)[4..],
        [
            "order.return_requested",
            "order.return_received",
            "order.refunded"
        ]
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        platform.payments_of("rosa", &id).await[0]["refunded_amount"],
        "5.00",
        "refunded once"
    );
}

#[tokio::test]
async fn an_authorization_never_captured_expires_and_its_order_is_cancelled() {
    let platform = spawn_platform(Options {
        manual_capture: true,
        authorization_expiry_seconds: Some(1),
        ..Options::default()
    })
    .await;
    let order = platform.create_order("edna", Some("tok_visa")).await;
    let id = order["id"].as_str().unwrap().to_owned();
    let cancelled = platform
        .wait_for("edna", &id, "the expiry", |o| o["status"] == "cancelled")
        .await;
    assert_eq!(cancelled["payment_status"], "voided");
    assert_eq!(cancelled["cancellation_reason"], "authorization_expired");
    let payments = platform.payments_of("edna", &id).await;
    assert_eq!(payments[0]["status"], "voided");
    assert_eq!(payments[0]["failure_reason"], "authorization_expired");
    assert_eq!(
        types(&platform.history("edna", &id).await),
        [
            "order.created",
            "order.paid",
            "order.payment_voided",
            "order.cancelled"
        ]
    );
    // Nothing was taken, nothing refunded; it cannot ship.
    assert_eq!(payments[0]["captured_amount"], "0.00");
    assert_eq!(platform.ship(&id).await, 400);
}
