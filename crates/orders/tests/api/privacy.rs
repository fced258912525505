//! Personal data sealed at rest: the keys a service starts with must open
//! what is stored, and rotating the key-encryption key loses nothing.

use orders::app::Application;
use orders::config::Settings;
use platform::privacy::KeyRing;
use secrecy::SecretString;
use serde_json::Value;
use test_support::broker::TestBroker;

use crate::helpers::{spawn_app, test_settings, user};

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
