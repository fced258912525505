//! RabbitMQ: connection settings, the topology both services declare on start,
//! and the conversion of an outgoing message into AMQP properties.
//!
//! Topology (all durable, declared idempotently by whoever starts first):
//! - one topic exchange per publishing service (`orders.events`,
//!   `payments.events`), routing key = event type;
//! - per consumer: a quorum queue bound to the exchange it listens to, a
//!   fanout dead-letter exchange `<queue>.dlx` and its queue `<queue>.dlq`. A
//!   message that cannot be parsed is rejected straight to the DLQ; one that
//!   keeps failing is dead-lettered by the broker after `delivery_limit`
//!   deliveries (quorum queues count them), so nothing loops forever and
//!   nothing is silently dropped;
//! - per consumer, a fanout exchange `<queue>.redrive` bound to the queue
//!   alone: the operators' console redrives a dead letter through it, to
//!   that queue and no other, under its original routing key.

use std::time::Duration;

use anyhow::Context;
use contracts::amqp::{OutgoingMessage, TRACEPARENT_HEADER};
use lapin::{
    BasicProperties, Channel, Connection, ConnectionProperties, ExchangeKind,
    options::{ExchangeDeclareOptions, QueueBindOptions, QueueDeclareOptions},
    types::{AMQPValue, FieldTable, LongString, ShortString},
};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

/// `amqp:` section of a service's configuration.
#[derive(Debug, Clone, Deserialize)]
pub struct AmqpConfig {
    /// `amqp://user:password@host:port/vhost`; never logged.
    pub url: SecretString,
    /// The exchange this service publishes its events to.
    pub exchange: String,
    /// What this service consumes.
    pub consume: ConsumeConfig,
    /// Longest pause between reconnection attempts.
    #[serde(default = "default_max_backoff")]
    pub max_backoff_ms: u64,
}

fn default_max_backoff() -> u64 {
    5_000
}

/// One consumer's queue and what it is bound to.
#[derive(Debug, Clone, Deserialize)]
pub struct ConsumeConfig {
    pub queue: String,
    /// The exchange the queue is bound to (another service's).
    pub exchange: String,
    /// Binding keys, e.g. `payment.*`.
    pub routing_keys: Vec<String>,
    /// Unacknowledged deliveries in flight per consumer.
    #[serde(default = "default_prefetch")]
    pub prefetch: u16,
    /// Deliveries after which a failing message is dead-lettered.
    #[serde(default = "default_delivery_limit")]
    pub delivery_limit: i64,
}

fn default_prefetch() -> u16 {
    32
}

fn default_delivery_limit() -> i64 {
    5
}

/// Opens a connection (tokio's runtime, a named connection for the broker UI).
pub async fn connect(url: &SecretString, name: &str) -> anyhow::Result<Connection> {
    let properties =
        ConnectionProperties::default().with_connection_name(LongString::from(name.to_owned()));
    Connection::connect(url.expose_secret(), properties)
        .await
        .context("connecting to RabbitMQ")
}

/// Declares a service's topology (its exchange, its consumer queue with the
/// dead-letter path and bindings) before it starts serving, so nothing it
/// causes can be published before its queue is bound. Best effort: with the
/// broker down the service still starts, and its consumer and relay declare
/// the same topology once they connect.
pub async fn declare_topology(config: &AmqpConfig, service: &str) {
    let declared = tokio::time::timeout(Duration::from_secs(5), async {
        let connection = connect(&config.url, &format!("{service}-topology")).await?;
        let channel = connection.create_channel().await?;
        declare_exchange(&channel, &config.exchange).await?;
        let source_exists = exchange_exists(&connection, &config.consume.exchange).await?;
        declare_consumer(&channel, &config.consume, !source_exists).await?;
        connection.close(200, "declared".into()).await.ok();
        Ok::<_, anyhow::Error>(())
    })
    .await;
    match declared {
        Ok(Ok(())) => tracing::info!(service, "broker topology declared"),
        Ok(Err(error)) => tracing::warn!(
            service,
            error.message = %format!("{error:#}"),
            "could not declare the broker topology yet; the consumer will"
        ),
        Err(_) => tracing::warn!(
            service,
            "timed out declaring the broker topology; the consumer will"
        ),
    }
}

/// Opens and closes a connection: what `/ready` asks of the broker.
pub async fn ping(url: &SecretString, service: &str) -> anyhow::Result<()> {
    let connection = connect(url, &format!("{service}-ready")).await?;
    connection.close(200, "ok".into()).await.ok();
    Ok(())
}

/// Whether `exchange` exists: a passive declare on a throwaway channel (it
/// needs no permission to configure the exchange; a missing one closes the
/// channel, not the connection).
pub async fn exchange_exists(connection: &Connection, exchange: &str) -> anyhow::Result<bool> {
    let probe = connection.create_channel().await?;
    let exists = probe
        .exchange_declare(
            ShortString::from(exchange),
            ExchangeKind::Topic,
            ExchangeDeclareOptions {
                passive: true,
                durable: true,
                ..ExchangeDeclareOptions::default()
            },
            FieldTable::default(),
        )
        .await
        .is_ok();
    if exists {
        probe.close(200, "ok".into()).await.ok();
    }
    Ok(exists)
}

/// Declares a durable topic exchange.
pub async fn declare_exchange(channel: &Channel, exchange: &str) -> anyhow::Result<()> {
    channel
        .exchange_declare(
            ShortString::from(exchange),
            ExchangeKind::Topic,
            ExchangeDeclareOptions {
                durable: true,
                ..ExchangeDeclareOptions::default()
            },
            FieldTable::default(),
        )
        .await
        .with_context(|| format!("declaring exchange {exchange}"))
}

/// Declares a durable fanout exchange (a consumer's `.dlx` and `.redrive`).
async fn declare_fanout(channel: &Channel, exchange: &str) -> anyhow::Result<()> {
    channel
        .exchange_declare(
            ShortString::from(exchange),
            ExchangeKind::Fanout,
            ExchangeDeclareOptions {
                durable: true,
                ..ExchangeDeclareOptions::default()
            },
            FieldTable::default(),
        )
        .await
        .with_context(|| format!("declaring {exchange}"))
}

/// Declares a consumer's quorum queue, its bindings, and its dead-letter path.
/// The exchange it binds to belongs to another service: it is declared only
/// when `declare_source` (it does not exist yet), which a least-privileged
/// user may not do; it then retries until the owner has declared it.
pub async fn declare_consumer(
    channel: &Channel,
    consume: &ConsumeConfig,
    declare_source: bool,
) -> anyhow::Result<()> {
    let dlx = format!("{}.dlx", consume.queue);
    let dlq = format!("{}.dlq", consume.queue);
    let durable = QueueDeclareOptions {
        durable: true,
        ..QueueDeclareOptions::default()
    };
    declare_fanout(channel, &dlx).await?;
    let mut quorum = FieldTable::default();
    quorum.insert(
        "x-queue-type".into(),
        AMQPValue::LongString("quorum".into()),
    );
    channel
        .queue_declare(ShortString::from(dlq.as_str()), durable, quorum.clone())
        .await
        .with_context(|| format!("declaring {dlq}"))?;
    channel
        .queue_bind(
            ShortString::from(dlq.as_str()),
            ShortString::from(dlx.as_str()),
            ShortString::from(""),
            QueueBindOptions::default(),
            FieldTable::default(),
        )
        .await
        .with_context(|| format!("binding {dlq}"))?;

    let mut arguments = quorum;
    arguments.insert(
        "x-dead-letter-exchange".into(),
        AMQPValue::LongString(dlx.as_str().into()),
    );
    arguments.insert(
        "x-delivery-limit".into(),
        AMQPValue::LongLongInt(consume.delivery_limit),
    );
    channel
        .queue_declare(
            ShortString::from(consume.queue.as_str()),
            durable,
            arguments,
        )
        .await
        .with_context(|| format!("declaring {}", consume.queue))?;
    let redrive = format!("{}.redrive", consume.queue);
    declare_fanout(channel, &redrive).await?;
    channel
        .queue_bind(
            ShortString::from(consume.queue.as_str()),
            ShortString::from(redrive.as_str()),
            ShortString::from(""),
            QueueBindOptions::default(),
            FieldTable::default(),
        )
        .await
        .with_context(|| format!("binding {} to {redrive}", consume.queue))?;
    if declare_source {
        declare_exchange(channel, &consume.exchange).await?;
    }
    for key in &consume.routing_keys {
        channel
            .queue_bind(
                ShortString::from(consume.queue.as_str()),
                ShortString::from(consume.exchange.as_str()),
                ShortString::from(key.as_str()),
                QueueBindOptions::default(),
                FieldTable::default(),
            )
            .await
            .with_context(|| format!("binding {} to {key}", consume.queue))?;
    }
    Ok(())
}

/// The AMQP properties of an outgoing message (see `contracts::amqp`).
pub fn properties(message: &OutgoingMessage) -> BasicProperties {
    let mut properties = BasicProperties::default()
        .with_content_type(ShortString::from(message.content_type))
        .with_message_id(ShortString::from(message.message_id.as_str()))
        .with_type(ShortString::from(message.routing_key.as_str()))
        .with_timestamp(message.timestamp / 1000)
        .with_delivery_mode(if message.persistent { 2 } else { 1 });
    if let Some(traceparent) = &message.traceparent {
        let mut headers = FieldTable::default();
        headers.insert(
            TRACEPARENT_HEADER.into(),
            AMQPValue::LongString(traceparent.as_str().into()),
        );
        properties = properties.with_headers(headers);
    }
    properties
}

/// Reads a string header of a delivery.
pub fn header(properties: &BasicProperties, name: &str) -> Option<String> {
    let headers = properties.headers().as_ref()?;
    match headers.inner().get(name)? {
        AMQPValue::LongString(value) => {
            Some(String::from_utf8_lossy(value.as_bytes()).into_owned())
        }
        AMQPValue::ShortString(value) => Some(value.to_string()),
        _ => None,
    }
}
