//! RabbitMQ for tests: unique exchange and queue names per test (so tests run
//! in parallel against the shared broker), a subscriber that records every
//! event, direct publishing, and clean-up on drop.

use std::time::Duration;

use anyhow::Context;
use futures_util::StreamExt;
use lapin::{
    BasicProperties, Channel, Connection, ConnectionProperties, ExchangeKind,
    options::{
        BasicAckOptions, BasicConsumeOptions, BasicPublishOptions, ExchangeDeclareOptions,
        ExchangeDeleteOptions, QueueBindOptions, QueueDeclareOptions, QueueDeleteOptions,
    },
    types::FieldTable,
};
use uuid::Uuid;

/// The broker tests use: `TEST_AMQP_URL`, by default the local RabbitMQ.
pub fn amqp_url() -> String {
    std::env::var("TEST_AMQP_URL")
        .unwrap_or_else(|_| "amqp://guest:guest@127.0.0.1:5672/%2f".to_owned())
}

/// The names one test uses; dropped (deleted from the broker) with it.
#[derive(Debug)]
pub struct TestBroker {
    pub url: String,
    pub suffix: String,
    queues: Vec<String>,
    exchanges: Vec<String>,
}

impl TestBroker {
    pub fn new() -> TestBroker {
        TestBroker {
            url: amqp_url(),
            suffix: Uuid::new_v4().simple().to_string()[..12].to_owned(),
            queues: Vec::new(),
            exchanges: Vec::new(),
        }
    }

    /// `base` made unique to this test (and remembered for clean-up).
    pub fn exchange(&mut self, base: &str) -> String {
        let name = format!("{base}.{}", self.suffix);
        self.exchanges.push(name.clone());
        name
    }

    /// A consumer queue name; its `.dlx`, `.dlq` and `.redrive` are cleaned
    /// up too.
    pub fn queue(&mut self, base: &str) -> String {
        let name = format!("{base}.{}", self.suffix);
        self.queues.push(name.clone());
        self.queues.push(format!("{name}.dlq"));
        self.exchanges.push(format!("{name}.dlx"));
        self.exchanges.push(format!("{name}.redrive"));
        name
    }

    pub async fn connect(&self) -> anyhow::Result<(Connection, Channel)> {
        let connection = Connection::connect(&self.url, ConnectionProperties::default())
            .await
            .context("connecting to the test RabbitMQ (set TEST_AMQP_URL?)")?;
        let channel = connection.create_channel().await?;
        Ok((connection, channel))
    }

    /// A subscriber: an exclusive queue bound to `exchange` with `keys`.
    pub async fn subscribe(&self, bindings: &[(&str, &str)]) -> anyhow::Result<Subscriber> {
        let (connection, channel) = self.connect().await?;
        let queue = channel
            .queue_declare(
                "".into(),
                QueueDeclareOptions {
                    exclusive: true,
                    auto_delete: true,
                    ..QueueDeclareOptions::default()
                },
                FieldTable::default(),
            )
            .await?;
        for (exchange, key) in bindings {
            declare_topic(&channel, exchange).await?;
            channel
                .queue_bind(
                    queue.name().clone(),
                    (*exchange).into(),
                    (*key).into(),
                    QueueBindOptions::default(),
                    FieldTable::default(),
                )
                .await?;
        }
        let consumer = channel
            .basic_consume(
                queue.name().clone(),
                "test-subscriber".into(),
                BasicConsumeOptions::default(),
                FieldTable::default(),
            )
            .await?;
        Ok(Subscriber {
            _connection: connection,
            _channel: channel,
            consumer,
        })
    }

    /// Publishes a raw message to `exchange` (declaring it), awaiting the confirm.
    pub async fn publish(
        &self,
        exchange: &str,
        routing_key: &str,
        body: &[u8],
        properties: BasicProperties,
    ) -> anyhow::Result<()> {
        let (_connection, channel) = self.connect().await?;
        declare_topic(&channel, exchange).await?;
        channel
            .confirm_select(lapin::options::ConfirmSelectOptions::default())
            .await?;
        let confirm = channel
            .basic_publish(
                exchange.into(),
                routing_key.into(),
                BasicPublishOptions::default(),
                body,
                properties,
            )
            .await?
            .await?;
        anyhow::ensure!(confirm.is_ack(), "the broker refused the message");
        Ok(())
    }
}

impl Default for TestBroker {
    fn default() -> Self {
        Self::new()
    }
}

async fn declare_topic(channel: &Channel, exchange: &str) -> anyhow::Result<()> {
    channel
        .exchange_declare(
            exchange.into(),
            ExchangeKind::Topic,
            ExchangeDeclareOptions {
                durable: true,
                ..ExchangeDeclareOptions::default()
            },
            FieldTable::default(),
        )
        .await?;
    Ok(())
}

impl Drop for TestBroker {
    fn drop(&mut self) {
        let (url, queues, exchanges) = (
            self.url.clone(),
            self.queues.clone(),
            self.exchanges.clone(),
        );
        let _ = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .ok()?;
            runtime.block_on(async {
                let connection = Connection::connect(&url, ConnectionProperties::default())
                    .await
                    .ok()?;
                let channel = connection.create_channel().await.ok()?;
                for queue in &queues {
                    let _ = channel
                        .queue_delete(queue.as_str().into(), QueueDeleteOptions::default())
                        .await;
                }
                for exchange in &exchanges {
                    let _ = channel
                        .exchange_delete(exchange.as_str().into(), ExchangeDeleteOptions::default())
                        .await;
                }
                Some(())
            })
        })
        .join();
    }
}

/// Receives what was published to its bindings.
pub struct Subscriber {
    _connection: Connection,
    _channel: Channel,
    consumer: lapin::Consumer,
}

impl Subscriber {
    /// The next message body, or `None` after `wait` without one.
    pub async fn next(&mut self, wait: Duration) -> Option<Vec<u8>> {
        let delivery = tokio::time::timeout(wait, self.consumer.next())
            .await
            .ok()??
            .ok()?;
        let _ = delivery.ack(BasicAckOptions::default()).await;
        Some(delivery.data)
    }

    /// Collects messages until `count` arrived or `wait` passed without one.
    pub async fn collect(&mut self, count: usize, wait: Duration) -> Vec<Vec<u8>> {
        let mut messages = Vec::new();
        while messages.len() < count {
            match self.next(wait).await {
                Some(message) => messages.push(message),
                None => break,
            }
        }
        messages
    }
}
