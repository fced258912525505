//! Least privilege in RabbitMQ, proven against the local broker: the
//! permissions of `deploy/rabbitmq/definitions.json` (what compose loads),
//! applied to users of a vhost of this test only, let each service declare
//! and use its own topology, and refuse it the other's exchange and queue.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::Command;

use lapin::{
    BasicProperties, Connection, ConnectionProperties,
    options::{BasicGetOptions, BasicPublishOptions, ConfirmSelectOptions},
};
use platform::amqp::{AmqpConfig, ConsumeConfig};
use secrecy::SecretString;

const DEFINITIONS: &str = include_str!("../../../deploy/rabbitmq/definitions.json");

fn rabbitmqctl(args: &[&str]) {
    let output = Command::new("rabbitmqctl")
        .args(args)
        .output()
        .expect("rabbitmqctl runs (the tests need the local RabbitMQ)");
    assert!(
        output.status.success(),
        "rabbitmqctl {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// A vhost with the definitions' users (under unique names), deleted on drop.
struct Vhost {
    name: String,
    users: Vec<String>,
}

impl Vhost {
    fn create() -> Vhost {
        let id = uuid::Uuid::new_v4().simple().to_string();
        let vhost = Vhost {
            name: format!("test_{id}"),
            users: Vec::new(),
        };
        rabbitmqctl(&["add_vhost", &vhost.name]);
        vhost
    }

    /// `role` of the definitions (`orders`, `payments`), as a user of this
    /// vhost only; returns its AMQP URL.
    fn user(&mut self, role: &str) -> String {
        let definitions: serde_json::Value = serde_json::from_str(DEFINITIONS).unwrap();
        let permission = definitions["permissions"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["user"] == role)
            .expect("the role is in the definitions");
        let name = format!("{}_{role}", self.name);
        rabbitmqctl(&["add_user", &name, "secret"]);
        self.users.push(name.clone());
        rabbitmqctl(&[
            "set_permissions",
            "-p",
            &self.name,
            &name,
            permission["configure"].as_str().unwrap(),
            permission["write"].as_str().unwrap(),
            permission["read"].as_str().unwrap(),
        ]);
        format!("amqp://{name}:secret@127.0.0.1:5672/{}", self.name)
    }
}

impl Drop for Vhost {
    fn drop(&mut self) {
        for user in &self.users {
            let _ = Command::new("rabbitmqctl")
                .args(["delete_user", user])
                .output();
        }
        let _ = Command::new("rabbitmqctl")
            .args(["delete_vhost", &self.name])
            .output();
    }
}

fn config(url: &str, own: &str, other: &str, routing_key: &str) -> AmqpConfig {
    AmqpConfig {
        url: SecretString::from(url.to_owned()),
        exchange: format!("{own}.events"),
        consume: ConsumeConfig {
            queue: format!("{own}.{other}-events"),
            exchange: format!("{other}.events"),
            routing_keys: vec![routing_key.to_owned()],
            prefetch: 4,
            delivery_limit: 5,
        },
        max_backoff_ms: 100,
    }
}

/// Whether publishing to `exchange` as `url` is confirmed.
async fn may_publish(url: &str, exchange: &str) -> bool {
    let connection = Connection::connect(url, ConnectionProperties::default())
        .await
        .unwrap();
    let channel = connection.create_channel().await.unwrap();
    channel
        .confirm_select(ConfirmSelectOptions::default())
        .await
        .unwrap();
    let published = async {
        channel
            .basic_publish(
                exchange.into(),
                "payment.successful".into(),
                BasicPublishOptions::default(),
                b"{}",
                BasicProperties::default(),
            )
            .await?
            .await
    }
    .await;
    matches!(published, Ok(confirmation) if confirmation.is_ack())
}

async fn may_read(url: &str, queue: &str) -> bool {
    let connection = Connection::connect(url, ConnectionProperties::default())
        .await
        .unwrap();
    let channel = connection.create_channel().await.unwrap();
    channel
        .basic_get(queue.into(), BasicGetOptions::default())
        .await
        .is_ok()
}

#[tokio::test]
async fn each_service_runs_with_its_own_permissions_and_cannot_use_the_others() {
    let mut vhost = Vhost::create();
    let orders_url = vhost.user("orders");
    let payments_url = vhost.user("payments");
    let orders = config(&orders_url, "orders", "payments", "payment.*");
    let payments = config(&payments_url, "payments", "orders", "order.cancelled");

    // Each service declares its own exchange, queue and dead-letter path and
    // binds to the other's exchange (the second one finds the first's
    // exchange; the first's consumer retries until the other declared it).
    platform::amqp::declare_topology(&payments, "payments").await;
    platform::amqp::declare_topology(&orders, "orders").await;
    platform::amqp::declare_topology(&payments, "payments").await;
    assert!(may_read(&orders_url, "orders.payments-events").await);
    assert!(may_read(&payments_url, "payments.orders-events").await);
    assert!(may_publish(&orders_url, "orders.events").await);
    assert!(may_publish(&payments_url, "payments.events").await);

    // Holding the other's credentials buys nothing: no publishing to its
    // exchange, no reading its queue.
    assert!(!may_publish(&orders_url, "payments.events").await);
    assert!(!may_publish(&payments_url, "orders.events").await);
    assert!(!may_read(&orders_url, "payments.orders-events").await);
    assert!(!may_read(&payments_url, "orders.payments-events").await);
}
