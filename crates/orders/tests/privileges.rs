//! Least privilege in PostgreSQL, proven against the local server: with the
//! roles and schemas `deploy/postgres/init.sql` provisions (what `just up`
//! and compose run), each service's role migrates and uses its own schema
//! and can neither read nor write the other's.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use diesel_async::{AsyncConnection, AsyncPgConnection, SimpleAsyncConnection};
use secrecy::SecretString;
use test_support::{TestDatabase, admin_url};

const INIT: &str = include_str!("../../../deploy/postgres/init.sql");

/// The database `name` as `role` (local trust auth, or the role's
/// development password).
fn url_as(role: &str, name: &str) -> String {
    let mut url = reqwest::Url::parse(&admin_url()).unwrap();
    url.set_username(role).unwrap();
    url.set_password(Some(role)).unwrap();
    url.set_path(name);
    url.to_string()
}

async fn provisioned() -> TestDatabase {
    let name = format!("test_privileges_{}", uuid::Uuid::new_v4().simple());
    let mut admin = AsyncPgConnection::establish(&admin_url()).await.unwrap();
    admin
        .batch_execute(&format!("CREATE DATABASE \"{name}\""))
        .await
        .unwrap();
    let database = TestDatabase {
        url: url_as("postgres", &name),
        name,
    };
    let mut admin = AsyncPgConnection::establish(&{
        let mut url = reqwest::Url::parse(&admin_url()).unwrap();
        url.set_path(&database.name);
        url.to_string()
    })
    .await
    .unwrap();
    // Roles are cluster-wide: two runs at once may both try to create them.
    let _ = admin.batch_execute("SELECT pg_advisory_lock(4242)").await;
    admin.batch_execute(INIT).await.unwrap();
    let _ = admin.batch_execute("SELECT pg_advisory_unlock(4242)").await;
    database
}

#[tokio::test]
async fn each_service_role_uses_its_own_schema_and_cannot_touch_the_others() {
    let database = provisioned().await;
    let orders_url = url_as("orders", &database.name);
    let payments_url = url_as("payments", &database.name);
    platform::db::run_migrations(
        &SecretString::from(orders_url.clone()),
        "orders",
        orders::MIGRATIONS,
    )
    .await
    .expect("orders migrates its schema as its own role");
    platform::db::run_migrations(
        &SecretString::from(payments_url.clone()),
        "payments",
        payments::MIGRATIONS,
    )
    .await
    .expect("payments migrates its schema as its own role");

    let mut as_orders = AsyncPgConnection::establish(&orders_url).await.unwrap();
    let mut as_payments = AsyncPgConnection::establish(&payments_url).await.unwrap();
    as_orders
        .batch_execute("SELECT count(*) FROM orders.events")
        .await
        .expect("orders reads its own tables");
    as_payments
        .batch_execute("SELECT count(*) FROM payments.payments")
        .await
        .expect("payments reads its own tables");

    let attempts = [
        (true, "SELECT count(*) FROM payments.payments"),
        (
            true,
            "INSERT INTO payments.inbox (event_id, event_type) VALUES (gen_random_uuid(), 'x')",
        ),
        (true, "CREATE TABLE payments.intruder (id int)"),
        (false, "SELECT count(*) FROM orders.events"),
        (false, "UPDATE orders.orders SET status = 'paid'"),
        (false, "CREATE TABLE orders.intruder (id int)"),
    ];
    for (by_orders, statement) in attempts {
        let conn = if by_orders {
            &mut as_orders
        } else {
            &mut as_payments
        };
        let refused = conn.batch_execute(statement).await.err();
        let message = format!("{refused:?}");
        assert!(
            message.contains("permission denied"),
            "{statement}: {message}"
        );
    }
}
