//! Personal data sealed at rest: the keys a service starts with must open
//! what is stored, rotating the key-encryption key loses nothing, and
//! erasing a user's data (destroying their key) leaves their orders whole
//! but for it.

use orders::app::Application;
use orders::config::Settings;
use platform::privacy::KeyRing;
use secrecy::SecretString;
use serde_json::Value;
use test_support::broker::TestBroker;

use test_support::tokens::TokenSpec;

use crate::helpers::{AUDIENCE, admin, spawn_app, test_settings, user};

const OTHER: &str = "b3RoZXIta2V5LWVuY3J5cHRpb24ta2V5LWZvci10ZXM=";
const DEV: &str = "ZGV2ZWxvcG1lbnQta2V5LWVuY3J5cHRpb24ta2V5ISE=";

fn with_keys(mut settings: Settings, keys: &[(&str, &str)], active: &str) -> Settings {
    settings.privacy.keys = keys
        .iter()
        .map(|(id, key)| ((*id).to_owned(), SecretString::from(*key)))
        .collect();
    settings.privacy.active_key = active.to_owned();
    settings
}

async fn refused(settings: Settings) -> String {
    match Application::build(settings).await {
        Ok(_) => panic!("the service started"),
        Err(error) => format!("{error:#}"),
    }
}

#[tokio::test]
async fn a_wrong_or_missing_key_is_refused_at_start_and_a_rotated_one_reads_everything() {
    let app = spawn_app().await;
    let token = user("rotating_user");
    let created = app.create_order(&token).await;
    let id = created["id"].as_str().unwrap().to_owned();
    assert!(!created["shipping_address"].is_null());
    let mut broker = TestBroker::new();

    // The same key id with other bytes: refused, and says why.
    let wrong = with_keys(
        test_settings(&app.db, &mut broker),
        &[("dev", OTHER)],
        "dev",
    );
    let error = refused(wrong).await;
    assert!(error.contains("privacy.keys"), "{error}");
    // The key that wraps the stored data keys missing: refused.
    let missing = with_keys(
        test_settings(&app.db, &mut broker),
        &[("next", OTHER)],
        "next",
    );
    let error = refused(missing).await;
    assert!(error.contains("`dev`"), "{error}");

    // Rotation: the new key active beside the old one, the data keys
    // rewrapped (what the service's periodic sweep does), the old key gone.
    let both = with_keys(
        test_settings(&app.db, &mut broker),
        &[("dev", DEV), ("next", OTHER)],
        "next",
    );
    let ring = KeyRing::new(&both.privacy, false).unwrap();
    drop(Application::build(both).await.expect("both keys start"));
    let mut conn = app.db.connect().await.unwrap();
    let rewrapped = orders::store::keys::rewrap(&mut conn, &ring, 500)
        .await
        .unwrap();
    assert_eq!(rewrapped, 1, "the one user's data key");
    let rotated = with_keys(
        test_settings(&app.db, &mut broker),
        &[("next", OTHER)],
        "next",
    );
    let running = Application::build(rotated)
        .await
        .expect("the new key alone starts");
    let address = format!("http://127.0.0.1:{}", running.port());
    tokio::spawn(running.run_until_stopped());
    let read: Value = reqwest::Client::new()
        .get(format!("{address}/api/v1/orders/{id}"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(read["shipping_address"], created["shipping_address"]);
    assert_eq!(read["total"], created["total"]);
}

fn privacy_officer() -> String {
    TokenSpec::new(AUDIENCE, "dpo_1", &["orders.privacy"]).sign()
}

async fn erase(app: &crate::helpers::TestApp, token: &str, user: &str) -> (u16, Value) {
    let response = app
        .client
        .delete(format!("{}/api/v1/users/{user}/personal-data", app.address))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    (response.status().as_u16(), response.json().await.unwrap())
}

#[tokio::test]
async fn erasing_a_user_destroys_their_personal_data_and_nothing_else() {
    let app = spawn_app().await;
    let alice = user("erased_alice");
    let placed = app.create_order(&alice).await;
    let id = placed["id"].as_str().unwrap().to_owned();
    assert_eq!(placed["notes"], "Leave at the door");
    let second = app.create_unpaid_order(&alice).await;
    let second_id = second["id"].as_str().unwrap().to_owned();
    assert_eq!(app.cancel(&alice, &second_id).await.status(), 200);
    let bob = user("kept_bob");
    let bobs = app.create_order(&bob).await;
    // One placed with an Idempotency-Key: its stored answer is sealed too.
    let keyed = || {
        app.client
            .post(format!("{}/api/v1/orders", app.address))
            .bearer_auth(&alice)
            .header("Idempotency-Key", "erasure-test-key-1")
            .json(&crate::helpers::order_body())
            .send()
    };
    let first = keyed().await.unwrap();
    assert_eq!(first.status(), 201);
    let first = first.bytes().await.unwrap();
    let replayed = keyed().await.unwrap();
    assert_eq!(replayed.headers()["idempotent-replayed"], "true");
    assert_eq!(
        replayed.bytes().await.unwrap(),
        first,
        "replayed byte for byte"
    );
    let stored = stored_answers(&app).await;
    assert!(stored.contains("erasure-test-key-1"), "{stored}");
    assert!(
        !stored.contains("Lovelace"),
        "a stored answer in plain text: {stored}"
    );

    // Only the privacy scope opens it; an admin is refused.
    assert_eq!(erase(&app, &admin(), "erased_alice").await.0, 403);
    assert_eq!(erase(&app, &alice, "erased_alice").await.0, 403);
    assert_eq!(
        erase(&app, &privacy_officer(), "not a user id").await.0,
        400
    );

    let (status, erased) = erase(&app, &privacy_officer(), "erased_alice").await;
    assert_eq!(status, 200, "{erased}");
    assert_eq!(erased["key_destroyed"], true);
    assert_eq!(erased["orders"], 3);
    assert_eq!(erased["orders_erased"], 3);

    // The keyed request replayed after the erasure: the order without its
    // personal part.
    let replayed = keyed().await.unwrap();
    assert_eq!(replayed.status(), 201);
    let replayed: Value = replayed.json().await.unwrap();
    assert!(replayed.get("shipping_address").is_none(), "{replayed}");
    assert!(replayed.get("total").is_some(), "{replayed}");

    // The order reads whole but for its personal fields.
    let read: Value = app
        .get(&alice, &format!("/api/v1/orders/{id}"))
        .await
        .json()
        .await
        .unwrap();
    for personal in ["shipping_address", "billing_address", "notes"] {
        assert!(read.get(personal).is_none(), "{personal} erased: {read}");
    }
    for kept in [
        "total",
        "subtotal",
        "items",
        "status",
        "order_number",
        "currency",
    ] {
        assert_eq!(read[kept], placed[kept], "{kept} kept");
    }
    let cancelled: Value = app
        .get(&alice, &format!("/api/v1/orders/{second_id}"))
        .await
        .json()
        .await
        .unwrap();
    assert!(
        cancelled.get("cancellation_reason").is_none(),
        "{cancelled}"
    );
    assert_eq!(cancelled["status"], "cancelled");
    // Its history keeps every event, in order, the erasure last; none shows
    // a personal field any more.
    let history = app.history(&alice, &id).await;
    assert_eq!(history[0], (1, "order.created".to_owned()));
    assert_eq!(
        history.last().unwrap(),
        &(
            history.len() as u64,
            "order.personal_data_erased".to_owned()
        )
    );
    let trail = app
        .get(&alice, &format!("/api/v1/orders/{id}/events"))
        .await
        .text()
        .await
        .unwrap();
    for value in [
        "Leave at the door",
        "Lovelace",
        "SW1Y 4JH",
        "ada@example.com",
    ] {
        assert!(!trail.contains(value), "the history still shows {value}");
    }
    let listed = app
        .get(&alice, "/api/v1/orders")
        .await
        .text()
        .await
        .unwrap();
    assert!(!listed.contains("Lovelace"), "{listed}");

    // Someone else's orders are untouched.
    let kept: Value = app
        .get(
            &bob,
            &format!("/api/v1/orders/{}", bobs["id"].as_str().unwrap()),
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(kept["shipping_address"], bobs["shipping_address"]);

    // Again: nothing more changes.
    let (status, again) = erase(&app, &privacy_officer(), "erased_alice").await;
    assert_eq!(status, 200);
    assert_eq!(again["key_destroyed"], false);
    assert_eq!(again["orders_erased"], 0);
    assert_eq!(app.history(&alice, &id).await.len(), history.len());

    // A new order after the erasure is kept, with a new key.
    let later = app.create_order(&alice).await;
    let later_read: Value = app
        .get(
            &alice,
            &format!("/api/v1/orders/{}", later["id"].as_str().unwrap()),
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(later_read["notes"], "Leave at the door");
    assert_eq!(later_read["shipping_address"], later["shipping_address"]);

    // A user nobody knows: answered, nothing to do.
    let (status, unknown) = erase(&app, &privacy_officer(), "nobody_at_all").await;
    assert_eq!(status, 200);
    assert_eq!(unknown["orders"], 0);
    assert_eq!(unknown["key_destroyed"], false);
}

/// Every stored Idempotency-Key row, as text.
async fn stored_answers(app: &crate::helpers::TestApp) -> String {
    use diesel_async::RunQueryDsl;
    #[derive(diesel::QueryableByName)]
    struct Row {
        #[diesel(sql_type = diesel::sql_types::Text)]
        text: String,
    }
    let rows: Vec<Row> = diesel::sql_query(
        "SELECT k.key || ' ' || encode(k.response_body, 'escape') AS text \
         FROM orders.idempotency_keys k WHERE k.response_body IS NOT NULL",
    )
    .load(&mut app.db.connect().await.unwrap())
    .await
    .unwrap();
    rows.into_iter().map(|row| row.text).collect()
}
