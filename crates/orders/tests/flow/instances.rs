//! Several instances on one database and broker, one of them killed with
//! SIGKILL half-way: every order is paid exactly once, every order's events
//! arrive (in sequence), the consumers share the work, nothing is lost.

use std::collections::{HashMap, HashSet};
use std::process::Command;
use std::time::Duration;

use contracts::cloud::{self, EventMeta};
use serde_json::Value;

use crate::helpers::{Options, spawn_platform};

#[tokio::test]
async fn two_instances_pay_each_order_once_and_a_kill_9_loses_nothing() {
    let mut platform = spawn_platform(Options::default()).await;
    let log = std::env::temp_dir().join(format!("orders-b-{}.log", uuid::Uuid::new_v4()));
    let (mut second, second_url) = platform.spawn_orders_process(&log).await;
    let first_url = platform.orders.clone();
    let ready = test_support::wait_until_ready(&platform.client, &second_url).await;
    assert_eq!(
        ready["status"], "ok",
        "the second instance became ready: {ready}"
    );
    let mut subscriber = platform
        .broker
        .subscribe(&[(&platform.names.orders_exchange, "order.*")])
        .await
        .unwrap();

    // Orders with a card, placed on both instances in turn. Once the first
    // ones are paid (the consumers have shared their outcomes), four more go
    // to the second instance, which is killed at once, with their charges,
    // events and messages possibly in its hands; the rest go to the first.
    let mut ids: Vec<(String, String)> = Vec::new();
    for round in 0..18 {
        if round == 10 {
            for (user, id) in &ids {
                platform
                    .wait_for(user, id, "paid", |order: &Value| order["status"] == "paid")
                    .await;
            }
        }
        if round == 14 {
            let killed = Command::new("kill")
                .args(["-KILL", &second.id().to_string()])
                .status()
                .unwrap();
            assert!(killed.success());
            let _ = second.wait();
        }
        platform.orders = match round {
            0..10 if round % 2 == 1 => second_url.clone(),
            10..14 => second_url.clone(),
            _ => first_url.clone(),
        };
        let user = format!("user_{round}");
        let order = platform.create_order(&user, Some("tok_visa")).await;
        ids.push((user, order["id"].as_str().unwrap().to_owned()));
    }
    platform.orders = first_url.clone();

    // Every order ends paid (the survivor takes over the relay, the
    // consumer's share and any job the dead one had claimed).
    for (user, id) in &ids {
        let order = platform
            .wait_for(user, id, "paid", |order: &Value| order["status"] == "paid")
            .await;
        assert_eq!(order["payment_status"], "paid", "{id}");
    }
    // Exactly once.
    let charges = platform.charges_per_order().await;
    for (_, id) in &ids {
        assert_eq!(charges.get(id), Some(&1), "order {id} charged once");
    }
    // Each order's events arrive, none lost, in sequence (a batch the dead
    // relay published but could not mark may arrive again: at least once).
    let mut sequences: HashMap<String, Vec<u64>> = HashMap::new();
    let mut seen = HashSet::new();
    while let Some(body) = subscriber.next(Duration::from_secs(3)).await {
        let (meta, _): (EventMeta, Value) = cloud::parse(&body).unwrap();
        if seen.insert(meta.id) {
            sequences
                .entry(meta.subject)
                .or_default()
                .push(meta.sequence.unwrap());
        }
        if ids
            .iter()
            .all(|(_, id)| sequences.get(id).is_some_and(|s| s.len() >= 2))
        {
            break;
        }
    }
    for (_, id) in &ids {
        assert_eq!(
            sequences.get(id).map(Vec::as_slice),
            Some(&[1, 2][..]),
            "order {id}: order.created then order.paid"
        );
    }
    // The consumers shared the work: the second instance consumed payment
    // outcomes before it was killed.
    let logs = std::fs::read_to_string(&log).unwrap_or_default();
    let consumed = logs
        .lines()
        .filter(|line| line.contains("payment event consumed"))
        .count();
    assert!(
        consumed > 0,
        "the second instance consumed nothing:\n{logs}"
    );
    let _ = std::fs::remove_file(&log);
}
