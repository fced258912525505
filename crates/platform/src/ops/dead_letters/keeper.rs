//! Keeping: every message of the dead-letter queue moved into the
//! `dead_letters` table, committed before it is acknowledged.

use std::{sync::Arc, time::Duration};

use anyhow::Context;
use diesel::sql_types::{Bytea, Jsonb, Nullable, Text};
use diesel_async::RunQueryDsl;
use futures_util::StreamExt;
use lapin::{
    BasicProperties,
    message::Delivery,
    options::{BasicAckOptions, BasicConsumeOptions, BasicNackOptions, BasicQosOptions},
    types::{AMQPValue, FieldTable, ShortString},
};
use serde_json::{Map, Value};

use super::super::Ops;
use crate::{amqp, db::PgPool, http::Stop, resilience::Reconnect};

/// Drains `<queue>.dlq` into the `dead_letters` table until stopped,
/// reconnecting after failures.
pub async fn keep(ops: Arc<Ops>, pool: PgPool, mut stop: Stop) {
    let mut backoff = Reconnect::new(5_000);
    loop {
        let outcome = drain(&ops, &pool, &mut backoff, &mut stop).await;
        if *stop.borrow() {
            return;
        }
        if let Err(error) = outcome {
            tracing::debug!(
                error.message = %format!("{error:#}"),
                "dead-letter keeper interrupted; reconnecting"
            );
        }
        tokio::select! {
            () = backoff.wait() => {}
            () = crate::http::stopped(&mut stop) => return,
        }
    }
}

async fn drain(
    ops: &Ops,
    pool: &PgPool,
    backoff: &mut Reconnect,
    stop: &mut Stop,
) -> anyhow::Result<()> {
    let connection = amqp::connect(&ops.amqp_url, &format!("{}-dead-letters", ops.service)).await?;
    let channel = connection.create_channel().await?;
    channel.basic_qos(16, BasicQosOptions::default()).await?;
    let dlq = format!("{}.dlq", ops.queue);
    let mut deliveries = channel
        .basic_consume(
            ShortString::from(dlq.as_str()),
            ShortString::from(format!("{}-dead-letters", ops.service)),
            BasicConsumeOptions::default(),
            FieldTable::default(),
        )
        .await
        .with_context(|| format!("consuming {dlq}"))?;
    backoff.reset();
    loop {
        let next = tokio::select! {
            next = deliveries.next() => next,
            () = crate::http::stopped(stop) => {
                connection.close(200, "stopping".into()).await.ok();
                return Ok(());
            }
        };
        let Some(delivery) = next else {
            anyhow::bail!("the dead-letter stream ended")
        };
        let delivery = delivery?;
        match store(ops, pool, &delivery).await {
            Ok(()) => {
                delivery.ack(BasicAckOptions::default()).await?;
            }
            Err(error) => {
                tracing::warn!(
                    error.message = %format!("{error:#}"),
                    "could not keep a dead letter; it stays in the queue"
                );
                delivery
                    .nack(BasicNackOptions {
                        requeue: true,
                        ..BasicNackOptions::default()
                    })
                    .await?;
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
    }
}

/// Why the message was dead-lettered: the consumer's reason, or the
/// broker's.
fn reason(properties: &BasicProperties) -> String {
    if let Some(reason) = amqp::header(properties, crate::consumer::REASON_HEADER) {
        return reason;
    }
    match amqp::header(properties, "x-first-death-reason").as_deref() {
        Some("delivery_limit") => {
            "failed on every delivery until the queue's delivery limit (delivery_limit)".to_owned()
        }
        Some(other) => format!("dead-lettered by the broker ({other})"),
        None => "unknown".to_owned(),
    }
}

async fn store(ops: &Ops, pool: &PgPool, delivery: &Delivery) -> anyhow::Result<()> {
    let properties = &delivery.properties;
    let message_id = properties
        .message_id()
        .as_ref()
        .map(ToString::to_string)
        .unwrap_or_else(|| format!("unidentified-{}", uuid::Uuid::now_v7()));
    let headers = properties
        .headers()
        .as_ref()
        .map_or(Value::Object(Map::new()), table_json);
    let subject = serde_json::from_slice::<Value>(&delivery.data)
        .ok()
        .and_then(|event| {
            event
                .get("subject")
                .and_then(Value::as_str)
                .map(str::to_owned)
        })
        .filter(|subject| subject.len() <= 200);
    let reason = reason(properties);
    let mut conn = crate::db::connection(pool).await?;
    diesel::sql_query(format!(
        "INSERT INTO {} AS d (queue, message_id, routing_key, content_type, reason, headers, body, subject) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8) \
         ON CONFLICT (queue, message_id) DO UPDATE SET state = 'dead', reason = EXCLUDED.reason, \
           headers = EXCLUDED.headers, times_dead_lettered = d.times_dead_lettered + 1, \
           dead_lettered_at = now(), settled_at = NULL",
        ops.table("dead_letters")
    ))
    .bind::<Text, _>(&ops.queue)
    .bind::<Text, _>(&message_id)
    .bind::<Text, _>(delivery.routing_key.as_str())
    .bind::<Nullable<Text>, _>(properties.content_type().as_ref().map(ToString::to_string))
    .bind::<Text, _>(&reason)
    .bind::<Jsonb, _>(&headers)
    .bind::<Bytea, _>(&delivery.data)
    .bind::<Nullable<Text>, _>(subject)
    .execute(&mut conn)
    .await?;
    tracing::warn!(
        message.id = %message_id,
        message.routing_key = %delivery.routing_key,
        reason,
        "dead letter kept for the operators"
    );
    Ok(())
}

fn table_json(table: &FieldTable) -> Value {
    Value::Object(
        table
            .inner()
            .iter()
            .map(|(name, value)| (name.to_string(), value_json(value)))
            .collect(),
    )
}

fn value_json(value: &AMQPValue) -> Value {
    match value {
        AMQPValue::LongString(text) => {
            Value::String(String::from_utf8_lossy(text.as_bytes()).into_owned())
        }
        AMQPValue::ShortString(text) => Value::String(text.to_string()),
        AMQPValue::Boolean(flag) => Value::Bool(*flag),
        AMQPValue::ShortShortInt(n) => Value::from(*n),
        AMQPValue::ShortShortUInt(n) => Value::from(*n),
        AMQPValue::ShortInt(n) => Value::from(*n),
        AMQPValue::ShortUInt(n) => Value::from(*n),
        AMQPValue::LongInt(n) => Value::from(*n),
        AMQPValue::LongUInt(n) => Value::from(*n),
        AMQPValue::LongLongInt(n) => Value::from(*n),
        AMQPValue::Timestamp(n) => Value::from(*n),
        AMQPValue::FieldTable(table) => table_json(table),
        AMQPValue::FieldArray(items) => {
            Value::Array(items.as_slice().iter().map(value_json).collect())
        }
        other => Value::String(format!("{other:?}")),
    }
}
