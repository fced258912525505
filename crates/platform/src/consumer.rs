//! Consuming events: the loop around a service's message handler.
//!
//! The handler decides; this module delivers and acknowledges:
//! - [`Outcome::Done`]: acknowledged (the handler has committed its work and
//!   recorded the event id in its inbox in the same transaction, so a
//!   redelivery finds it and has no second effect);
//! - [`Outcome::Retry`]: a transient failure (database down, conflict). Retried
//!   in place with back-off a few times, then returned to the queue; the quorum
//!   queue's delivery limit dead-letters a message that never succeeds;
//! - [`Outcome::DeadLetter`]: the message can never be processed (not a
//!   CloudEvent, wrong data, not from whom it claims): moved straight to the
//!   dead-letter queue with its reason in the `x-dead-letter-reason` header.
//!
//! Deliveries are handled concurrently up to the prefetch count. Handlers must
//! be correct under reordering: they act on the current state, not on the
//! assumption that events arrive in order.

use std::{sync::Arc, time::Duration};

use futures_util::{StreamExt, future::BoxFuture};
use lapin::{
    Channel,
    message::Delivery,
    options::{
        BasicAckOptions, BasicCancelOptions, BasicConsumeOptions, BasicNackOptions,
        BasicPublishOptions, BasicQosOptions, ConfirmSelectOptions,
    },
    types::{AMQPValue, FieldTable, LongString, ShortString},
};
use tokio::sync::Semaphore;
use tracing::Instrument;

use crate::amqp::{self, AmqpConfig};
use crate::resilience::{Reconnect, RetryPolicy};

/// A received message, detached from the AMQP client.
#[derive(Debug, Clone)]
pub struct Incoming {
    pub body: Vec<u8>,
    pub routing_key: String,
    pub message_id: Option<String>,
    /// From the AMQP header (the CloudEvent's own extension is the truth).
    pub traceparent: Option<String>,
    pub redelivered: bool,
}

/// What to do with a message after handling it.
#[derive(Debug)]
pub enum Outcome {
    Done,
    Retry(anyhow::Error),
    DeadLetter(String),
}

/// A service's handler of one queue's messages.
pub trait Handler: Send + Sync + 'static {
    fn handle<'a>(&'a self, message: &'a Incoming) -> BoxFuture<'a, Outcome>;
}

/// In-place retries of a transient failure before the message is requeued.
const IN_PLACE: RetryPolicy = RetryPolicy {
    retries: 3,
    min: Duration::from_millis(100),
    max: Duration::from_millis(1600),
};

/// Consumes `config.consume.queue` forever, reconnecting after failures;
/// `link` says whether it is consuming (the broker's readiness).
pub async fn run(
    config: AmqpConfig,
    name: &'static str,
    handler: Arc<dyn Handler>,
    link: Arc<crate::http::Link>,
    mut stop: crate::http::Stop,
) {
    let mut backoff = Reconnect::new(config.max_backoff_ms);
    loop {
        let outcome = session(&config, name, &handler, &mut backoff, &link, &mut stop).await;
        link.set(false);
        if *stop.borrow() {
            tracing::info!(
                consumer = name,
                "stopped consuming; in-flight messages finished"
            );
            return;
        }
        if let Err(error) = outcome {
            tracing::warn!(
                consumer = name,
                error.message = %format!("{error:#}"),
                "consumer interrupted; reconnecting"
            );
        }
        tokio::select! {
            () = backoff.wait() => {}
            () = crate::http::stopped(&mut stop) => return,
        }
    }
}

async fn session(
    config: &AmqpConfig,
    name: &'static str,
    handler: &Arc<dyn Handler>,
    backoff: &mut Reconnect,
    link: &crate::http::Link,
    stop: &mut crate::http::Stop,
) -> anyhow::Result<()> {
    let connection = amqp::connect(&config.url, &format!("{name}-consumer")).await?;
    let channel = connection.create_channel().await?;
    // Dead-lettered messages are republished with their reason, confirmed
    // before the original is acknowledged.
    channel
        .confirm_select(ConfirmSelectOptions::default())
        .await?;
    let source_exists = amqp::exchange_exists(&connection, &config.consume.exchange).await?;
    amqp::declare_consumer(&channel, &config.consume, !source_exists).await?;
    channel
        .basic_qos(config.consume.prefetch, BasicQosOptions::default())
        .await?;
    let tag = format!("{name}-{}", uuid::Uuid::new_v4().simple());
    let mut deliveries = channel
        .basic_consume(
            ShortString::from(config.consume.queue.as_str()),
            ShortString::from(tag.as_str()),
            BasicConsumeOptions::default(),
            FieldTable::default(),
        )
        .await?;
    tracing::info!(consumer = name, queue = %config.consume.queue, "consuming");
    link.set(true);
    backoff.reset();
    let capacity = usize::from(config.consume.prefetch.max(1));
    let slots = Arc::new(Semaphore::new(capacity));
    let mut stopping = false;
    loop {
        let next = tokio::select! {
            next = deliveries.next() => next,
            () = crate::http::stopped(stop), if !stopping => {
                // No new messages; those already delivered to us are still
                // handled (the stream ends after them), so none goes back
                // to the queue and counts as a failed delivery.
                stopping = true;
                channel
                    .basic_cancel(ShortString::from(tag.as_str()), BasicCancelOptions::default())
                    .await?;
                continue;
            }
        };
        let Some(delivery) = next else { break };
        let delivery = delivery?;
        let permit = slots.clone().acquire_owned().await?;
        let handler = handler.clone();
        let queue = config.consume.queue.clone();
        let channel = channel.clone();
        tokio::spawn(async move {
            let _permit = permit;
            process(&channel, &queue, handler.as_ref(), name, delivery).await;
        });
    }
    if stopping {
        // Every handler holds a slot until its message is settled.
        let _all = slots
            .acquire_many(u32::try_from(capacity).unwrap_or(u32::MAX))
            .await?;
        connection.close(200, "stopping".into()).await.ok();
        return Ok(());
    }
    anyhow::bail!("the delivery stream ended")
}

/// Handles one delivery in its own span (continuing the publisher's trace)
/// and settles it: acknowledged, returned to the queue, or dead-lettered.
async fn process(
    channel: &Channel,
    queue: &str,
    handler: &dyn Handler,
    name: &'static str,
    delivery: Delivery,
) {
    let message_id = delivery
        .properties
        .message_id()
        .as_ref()
        .map(ToString::to_string)
        .unwrap_or_default();
    let span = tracing::info_span!(
        "consume",
        otel.name = %format!("{} process", delivery.routing_key),
        otel.kind = "consumer",
        messaging.system = "rabbitmq",
        messaging.destination = %queue,
        messaging.message_id = %message_id,
        event.r#type = %delivery.routing_key,
        trace_id = tracing::field::Empty,
        span_id = tracing::field::Empty,
    );
    let header = amqp::header(&delivery.properties, contracts::amqp::TRACEPARENT_HEADER);
    crate::telemetry::continue_trace(&span, header.as_deref());
    crate::telemetry::record_trace_ids(&span);
    settle(channel, queue, handler, name, delivery)
        .instrument(span)
        .await;
}

/// Hands `delivery` to the handler (with in-place retries) and settles it.
async fn settle(
    channel: &Channel,
    queue: &str,
    handler: &dyn Handler,
    name: &'static str,
    delivery: Delivery,
) {
    let incoming = Incoming {
        body: delivery.data.clone(),
        routing_key: delivery.routing_key.to_string(),
        message_id: delivery
            .properties
            .message_id()
            .as_ref()
            .map(ToString::to_string),
        traceparent: amqp::header(&delivery.properties, contracts::amqp::TRACEPARENT_HEADER),
        redelivered: delivery.redelivered,
    };
    let outcome = handle_with_retries(handler, &incoming).await;
    let label = match &outcome {
        Outcome::Done => "done",
        Outcome::Retry(_) => "retried",
        Outcome::DeadLetter(_) => "dead_lettered",
    };
    let queue = queue.to_owned();
    metrics::counter!("messages_consumed_total", "queue" => queue.clone(), "outcome" => label)
        .increment(1);
    let acknowledged = match outcome {
        Outcome::Done => delivery.ack(BasicAckOptions::default()).await,
        Outcome::Retry(error) => {
            tracing::warn!(
                consumer = name,
                message.id = ?incoming.message_id,
                error.message = %format!("{error:#}"),
                "could not process a message; returning it to the queue"
            );
            delivery
                .nack(BasicNackOptions {
                    requeue: true,
                    ..BasicNackOptions::default()
                })
                .await
        }
        Outcome::DeadLetter(reason) => {
            tracing::error!(
                consumer = name,
                message.id = ?incoming.message_id,
                message.routing_key = %incoming.routing_key,
                reason,
                "dead-lettering a message that cannot be processed"
            );
            dead_letter(channel, &queue, &delivery, &reason).await
        }
    };
    if let Err(error) = acknowledged {
        // The broker will redeliver it; the inbox makes that harmless.
        tracing::warn!(consumer = name, error.message = %error, "could not acknowledge");
    }
}

/// The checks at the door, before an event is acted on: it is one of the
/// `types` this consumer expects, routed under its own type, from the
/// expected `source`, and its `subject` is the order its data names
/// (`order_id`). Anything else is a reason to dead-letter it.
pub fn admit(
    meta: &contracts::cloud::EventMeta,
    message: &Incoming,
    source: &str,
    types: &[&str],
    order_id: &str,
) -> Result<(), String> {
    if !types.contains(&meta.event_type.as_str()) {
        return Err(format!("unexpected event type `{}`", meta.event_type));
    }
    if message.routing_key != meta.event_type {
        return Err(format!(
            "routed as `{}` but typed `{}`",
            message.routing_key, meta.event_type
        ));
    }
    if meta.source != source {
        return Err(format!("source `{}` is not `{source}`", meta.source));
    }
    if meta.subject != order_id {
        return Err(format!(
            "subject `{}` is not the order its data names ({order_id})",
            meta.subject
        ));
    }
    Ok(())
}

/// The header a dead-lettered message carries its reason in.
pub const REASON_HEADER: &str = "x-dead-letter-reason";

/// Moves `delivery` to the queue's dead-letter exchange with `reason` in
/// [`REASON_HEADER`] (a broker-side reject cannot add one), then
/// acknowledges it; if the broker does not confirm the copy, the original is
/// returned to the queue instead, so nothing is lost.
async fn dead_letter(
    channel: &Channel,
    queue: &str,
    delivery: &Delivery,
    reason: &str,
) -> Result<bool, lapin::Error> {
    let mut headers = delivery.properties.headers().clone().unwrap_or_default();
    headers.insert(
        ShortString::from(REASON_HEADER),
        AMQPValue::LongString(LongString::from(reason.as_bytes().to_vec())),
    );
    let properties = delivery.properties.clone().with_headers(headers);
    let confirmed = async {
        channel
            .basic_publish(
                ShortString::from(format!("{queue}.dlx")),
                delivery.routing_key.clone(),
                BasicPublishOptions::default(),
                &delivery.data,
                properties,
            )
            .await?
            .await
    }
    .await;
    match confirmed {
        Ok(confirmation) if confirmation.is_ack() => delivery.ack(BasicAckOptions::default()).await,
        _ => {
            delivery
                .nack(BasicNackOptions {
                    requeue: true,
                    ..BasicNackOptions::default()
                })
                .await
        }
    }
}

async fn handle_with_retries(handler: &dyn Handler, incoming: &Incoming) -> Outcome {
    let attempt = || async {
        match handler.handle(incoming).await {
            Outcome::Retry(error) => Err(error),
            settled => Ok(settled),
        }
    };
    crate::resilience::retry(IN_PLACE, attempt, |_| true)
        .await
        .unwrap_or_else(Outcome::Retry)
}
