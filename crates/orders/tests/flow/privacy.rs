//! Personal data never leaves through the logs or the metrics, and is
//! never stored in plain text: an order full of recognisable personal data
//! goes through the whole flow (placed, paid, shipped, delivered; another
//! one refused, one cancelled with a reason, its story told by the
//! console), and not one of those values appears in either service's log
//! lines (their messages and span fields), in `/metrics`, or in any row of
//! either service's tables; its owner still reads every one of them.

use std::time::Duration;

use serde_json::{Value, json};

use crate::helpers::{Options, captured_logs, ops_token, orders_token, spawn_platform};

/// Values nobody else in the test suite uses, so any sighting is a leak.
const PERSONAL: &[&str] = &[
    "Zephyrine",
    "Quillfeather",
    "Marmalade Lane",
    "Flat Xq9",
    "ZQ9 8XY",
    "7700 900123",
    "zephyrine.q@example.net",
    "brass owl bell",
    "moved to Xanadu",
    "Quokkaquiet",
];

fn personal_order() -> Value {
    let address = json!({
        "first_name": "Zephyrine", "last_name": "Quillfeather",
        "line1": "77 Marmalade Lane", "line2": "Flat Xq9",
        "city": "London", "postal_code": "ZQ9 8XY", "country": "GB",
        "phone": "+44 7700 900123", "email": "zephyrine.q@example.net"
    });
    let mut billing = address.clone();
    billing["address_type"] = json!("BILLING");
    json!({
        "currency": "USD",
        "items": [{"product_id": "prod_123", "quantity": 1, "unit_price": "19.99", "name": "Mug"}],
        "shipping_address": address,
        "billing_address": billing,
        "notes": "ring the brass owl bell",
        "payment": {"method": "card", "token": "tok_visa"}
    })
}

#[tokio::test]
async fn personal_data_never_reaches_the_logs_or_the_metrics() {
    let platform = spawn_platform(Options::default()).await;
    let post = |body: Value| {
        platform
            .client
            .post(format!("{}/api/v1/orders", platform.orders))
            .bearer_auth(orders_token("zq_user"))
            .json(&body)
            .send()
    };

    // Placed, paid, shipped, delivered.
    let placed = post(personal_order()).await.unwrap();
    assert_eq!(placed.status(), 201);
    let order: Value = placed.json().await.unwrap();
    let id = order["id"].as_str().unwrap().to_owned();
    platform
        .wait_for("zq_user", &id, "payment", |o| o["status"] == "paid")
        .await;
    assert_eq!(platform.ship(&id).await, 200);
    assert_eq!(platform.patch(&id, "delivered").await, 200);
    // A return, with a reason only its owner may read.
    let returned = platform
        .client
        .post(format!("{}/api/v1/orders/{id}/returns", platform.orders))
        .bearer_auth(orders_token("zq_user"))
        .json(&json!({
            "items": [{"item_id": order["items"][0]["id"], "quantity": 1}],
            "reason": "the neighbour Quokkaquiet signed for it"
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(returned.status(), 201);

    // Refused: invalid fields around the personal ones.
    let mut invalid = personal_order();
    invalid["shipping_address"]["country"] = json!("Zephyrine Quillfeather");
    invalid["shipping_address"]["email"] = json!("zephyrine.q@example.net Flat Xq9");
    let refused = post(invalid).await.unwrap();
    assert_eq!(refused.status(), 400);

    // Cancelled with a personal reason (in the query string, too).
    let mut unpaid = personal_order();
    unpaid.as_object_mut().unwrap().remove("payment");
    let second: Value = post(unpaid).await.unwrap().json().await.unwrap();
    let second_id = second["id"].as_str().unwrap();
    let cancelled = platform
        .client
        .delete(format!(
            "{}/api/v1/orders/{second_id}?reason=moved%20to%20Xanadu",
            platform.orders
        ))
        .bearer_auth(orders_token("zq_user"))
        .send()
        .await
        .unwrap();
    assert_eq!(cancelled.status(), 200);

    // The console tells its story.
    let story = platform
        .client
        .get(format!("{}/api/v1/ops/orders/{id}", platform.orders))
        .bearer_auth(ops_token())
        .send()
        .await
        .unwrap();
    assert_eq!(story.status(), 200);
    let told = story.text().await.unwrap();
    for value in PERSONAL {
        assert!(!told.contains(value), "the console's story shows {value}");
    }

    // Let the relays, consumers and jobs finish what the flow started.
    tokio::time::sleep(Duration::from_millis(1500)).await;

    // Its owner reads it whole: the order, its history, the cancelled one.
    let read = |path: String| {
        let request = platform
            .client
            .get(format!("{}{path}", platform.orders))
            .bearer_auth(orders_token("zq_user"));
        async move { request.send().await.unwrap().text().await.unwrap() }
    };
    let whole = read(format!("/api/v1/orders/{id}")).await;
    let history = read(format!("/api/v1/orders/{id}/events")).await;
    let reason = read(format!("/api/v1/orders/{second_id}")).await;
    for value in &PERSONAL[..8] {
        assert!(whole.contains(value), "the order shows {value}: {whole}");
        assert!(history.contains(value), "its history shows {value}");
    }
    assert!(reason.contains("moved to Xanadu"), "{reason}");
    assert!(
        whole.contains("Quokkaquiet"),
        "the return's reason: {whole}"
    );
    assert!(
        history.contains("Quokkaquiet"),
        "the return's reason in the history"
    );
    // At rest, none of it is in plain text, in either service's tables.
    let dump = platform.dump_tables().await;
    assert!(dump.contains(&id), "the dump holds the order");
    for value in PERSONAL {
        assert!(!dump.contains(value), "a stored row holds {value}");
    }
    let lines = captured_logs();
    assert!(
        lines.iter().any(|line| line.to_string().contains(&id)),
        "the flow was logged (so the scan below reads its lines)"
    );
    for line in &lines {
        let text = line.to_string();
        for value in PERSONAL {
            assert!(!text.contains(value), "a log line holds {value}: {text}");
        }
    }
    for base in [&platform.orders, platform.payments.as_ref().unwrap()] {
        let metrics = platform
            .client
            .get(format!("{base}/metrics"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        for value in PERSONAL {
            assert!(!metrics.contains(value), "{base}/metrics holds {value}");
        }
    }
}
