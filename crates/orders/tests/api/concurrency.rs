//! Concurrent writers on one order: one wins, the other decides again on the
//! fresh state (or gets a conflict); no update is ever lost.

use orders::domain::{Order, OrderCommand, OrderId, Recorded};
use orders::store::{self, Cause, NewEvent, StoreError};
use reqwest::StatusCode;
use serde_json::Value;
use uuid::Uuid;

use crate::helpers::{TestApp, admin, spawn_app, user};

#[tokio::test]
async fn concurrent_ship_and_cancel_never_lose_an_update() {
    let app = spawn_app().await;
    let owner = user("alice");
    // Several orders, so both interleavings are likely to be exercised.
    for _ in 0..6 {
        let id = app.create_order(&owner).await["id"]
            .as_str()
            .unwrap()
            .to_owned();
        assert_eq!(
            app.patch_status(&admin(), &id, "paid").await.status(),
            StatusCode::OK
        );

        let admin = admin();
        let (ship, cancel) = tokio::join!(
            app.patch_status(&admin, &id, "shipped"),
            app.cancel(&owner, &id)
        );

        let statuses = [ship.status(), cancel.status()];
        let successes = statuses.iter().filter(|s| **s == StatusCode::OK).count();
        for status in statuses {
            assert!(
                status == StatusCode::OK || status == StatusCode::BAD_REQUEST,
                "{status}"
            );
        }
        assert!(successes >= 1, "one writer always wins");
        // If ship lost, it was refused (cancelled orders cannot ship); if cancel
        // lost the race it was retried on the shipped order and still applied.
        assert_eq!(
            cancel.status(),
            StatusCode::OK,
            "cancel applies in either order"
        );
        let history = app.history(&owner, &id).await;
        let sequences: Vec<u64> = history.iter().map(|(s, _)| *s).collect();
        assert_eq!(
            sequences,
            (1..=(2 + successes as u64)).collect::<Vec<_>>(),
            "gap-free: {history:?}"
        );
        let order: Value = app
            .get(&owner, &format!("/api/v1/orders/{id}"))
            .await
            .json()
            .await
            .unwrap();
        assert_eq!(order["status"], "cancelled");
        assert_eq!(order["version"], history.len());
    }
}

#[tokio::test]
async fn many_identical_concurrent_requests_record_one_event() {
    let app = spawn_app().await;
    let owner = user("alice");
    let id = app.create_order(&owner).await["id"]
        .as_str()
        .unwrap()
        .to_owned();

    let responses = futures_util::future::join_all((0..8).map(|_| app.cancel(&owner, &id))).await;

    assert!(responses.iter().all(|r| r.status() == StatusCode::OK));
    assert_eq!(app.history(&owner, &id).await.len(), 2);
}

#[tokio::test]
async fn a_write_decided_on_a_stale_version_is_a_conflict_and_writes_nothing() {
    let app = spawn_app().await;
    let id = app.create_order(&user("alice")).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let id = OrderId(Uuid::parse_str(&id).unwrap());
    let mut conn = app.conn().await;
    let order = store::events::load_order_impersonal(&mut conn, id)
        .await
        .unwrap()
        .unwrap();

    // Two writers decide on the same version 1.
    let decide = |command| {
        let event = order.handle(command).unwrap().remove(0);
        let recorded = Recorded {
            order_id: id,
            sequence: 2,
            occurred_at: time::macros::datetime!(2026-11-22 10:00:00.5 UTC),
            event,
        };
        let mut next = order.clone();
        next.apply(&recorded).unwrap();
        (recorded, next)
    };
    let (paid, paid_order) = decide(OrderCommand::MarkPaid);
    let (cancelled, cancelled_order) = decide(OrderCommand::Cancel { reason: None });
    async fn save(app: &TestApp, recorded: &Recorded, next: &Order) -> Result<(), StoreError> {
        let new_events = [NewEvent {
            id: Uuid::now_v7(),
            recorded,
            snapshot: platform::db::JsonText("null".to_owned()),
            personal: None,
        }];
        let ring = platform::privacy::KeyRing::new(
            &orders::config::Settings::defaults().unwrap().privacy,
            false,
        )
        .unwrap();
        let sealer = store::Sealer {
            ring: &ring,
            key: None,
        };
        let mut conn = app.conn().await;
        let cause = Cause {
            actor: "test",
            traceparent: None,
        };
        store::events::append(&mut conn, next, &new_events, cause, &[], Some(1), sealer).await
    }

    let first = save(&app, &paid, &paid_order).await;
    let second = save(&app, &cancelled, &cancelled_order).await;

    assert!(first.is_ok(), "{first:?}");
    assert!(matches!(second, Err(StoreError::Conflict)), "{second:?}");
    let stored = store::events::load_order_impersonal(&mut conn, id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored, paid_order);
    let projected = store::projections::find_projected(&mut conn, id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(projected.status, paid_order.status);
    assert_eq!(projected.version, 2);
}
