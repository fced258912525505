//! Forged and mismatched events through the real broker: each is
//! dead-lettered with its reason and changes nothing.

use std::time::Duration;

use contracts::{
    cloud::{self, EventMeta},
    order::OrderData,
    payment::{PaymentData, PaymentStatus},
};
use uuid::Uuid;

use crate::helpers::{Options, spawn_platform};

/// A `payment.successful` paying exactly `order`'s total, with the envelope
/// given.
pub(crate) fn success(
    order: &serde_json::Value,
    source: &str,
    subject: &str,
    event_type: &str,
) -> Vec<u8> {
    let now = time::OffsetDateTime::now_utc();
    let data = PaymentData {
        id: Uuid::now_v7(),
        order_id: Uuid::parse_str(order["id"].as_str().unwrap()).unwrap(),
        user_id: order["user_id"].as_str().unwrap().into(),
        amount: order["total"].as_str().unwrap().into(),
        currency: "USD".into(),
        method: "card".into(),
        status: PaymentStatus::Succeeded,
        failure_reason: None,
        provider_reference: Some("ch_forged".into()),
        capture_method: None,
        captured_amount: None,
        refunded_amount: None,
        refund: None,
        created_at: now,
        updated_at: now,
    };
    let meta = EventMeta {
        id: Uuid::now_v7(),
        source: source.into(),
        event_type: event_type.into(),
        subject: subject.into(),
        time: now,
        data_schema: None,
        sequence: None,
        traceparent: None,
    };
    cloud::to_json(&cloud::build(&meta, &data).unwrap()).unwrap()
}

#[tokio::test]
async fn forged_payment_events_are_dead_lettered_with_their_reason_and_pay_nothing() {
    let platform = spawn_platform(Options::default()).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let order = platform.create_order("mallory_victim", None).await;
    let id = order["id"].as_str().unwrap();
    let other = Uuid::now_v7().to_string();
    let cases = [
        (
            success(&order, "/evil", id, "payment.successful"),
            "payment.successful",
            "source `/evil`",
        ),
        (
            success(&order, "/payments", &other, "payment.successful"),
            "payment.successful",
            "is not the order its data names",
        ),
        (
            success(&order, "/payments", id, "payment.successful"),
            "payment.failed",
            "routed as `payment.failed`",
        ),
        (
            success(&order, "/payments", id, "payment.charged_back"),
            "payment.charged_back",
            "unexpected event type",
        ),
    ];
    for (seen, (body, routing_key, reason)) in cases.into_iter().enumerate() {
        platform
            .broker
            .publish(
                &platform.names.payments_exchange,
                routing_key,
                &body,
                Default::default(),
            )
            .await
            .unwrap();
        let dead = platform.next_dead_letter(&platform.orders, seen).await;
        let sent: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(dead["body"], sent, "the message itself is kept");
        assert_eq!(dead["type"], routing_key);
        let said = dead["reason"].as_str().unwrap();
        assert!(said.contains(reason), "{said}");
        let now = platform.order("mallory_victim", id).await;
        assert_eq!(now["status"], "pending", "{reason}: nothing changed");
        assert_eq!(now["version"], 1);
    }

    // The same event, honestly enveloped, pays the order.
    platform
        .broker
        .publish(
            &platform.names.payments_exchange,
            "payment.successful",
            &success(&order, "/payments", id, "payment.successful"),
            Default::default(),
        )
        .await
        .unwrap();
    for _ in 0..100 {
        if platform.order("mallory_victim", id).await["status"] == "paid" {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the genuine event did not pay the order");
}

#[tokio::test]
async fn a_forged_cancellation_does_not_make_payments_refund() {
    let platform = spawn_platform(Options::default()).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let order = platform
        .create_order("mallory_paid", Some("tok_visa"))
        .await;
    let id = order["id"].as_str().unwrap().to_owned();
    let mut paid = serde_json::Value::Null;
    for _ in 0..100 {
        paid = platform.order("mallory_paid", &id).await;
        if paid["status"] == "paid" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(paid["status"], "paid");
    let mut data: OrderData = serde_json::from_value(paid.clone()).unwrap();
    data.status = contracts::order::OrderStatus::Cancelled;
    let now = time::OffsetDateTime::now_utc();
    let meta = EventMeta {
        id: Uuid::now_v7(),
        source: "/not-orders".into(),
        event_type: "order.cancelled".into(),
        subject: id.clone(),
        time: now,
        data_schema: None,
        sequence: Some(99),
        traceparent: None,
    };
    let body = cloud::to_json(&cloud::build(&meta, &data).unwrap()).unwrap();
    platform
        .broker
        .publish(
            &platform.names.orders_exchange,
            "order.cancelled",
            &body,
            Default::default(),
        )
        .await
        .unwrap();
    let dead = platform
        .next_dead_letter(platform.payments.as_deref().unwrap(), 0)
        .await;
    let mut sent: serde_json::Value = serde_json::from_slice(&body).unwrap();
    platform::ops::mask::json(&mut sent);
    assert_eq!(
        dead["body"], sent,
        "kept, and shown with personal data masked"
    );
    assert_eq!(dead["body"]["data"]["id"], id.as_str());
    assert!(
        dead["reason"]
            .as_str()
            .unwrap()
            .contains("source `/not-orders`")
    );
    let after = platform.order("mallory_paid", &id).await;
    assert_eq!(after["payment_status"], "paid", "nothing was refunded");
}
