//! Redriving: a dead letter published again, as it first was, to the queue
//! it came from alone (`<queue>.redrive`), confirmed by the broker.

use std::time::Duration;

use lapin::{
    BasicProperties,
    options::{BasicPublishOptions, ConfirmSelectOptions},
    types::{AMQPValue, FieldTable, LongString, ShortString},
};
use serde_json::Value;

use super::super::Ops;
use super::Stored;
use crate::amqp;

/// What a redrive republishes: the message as it was first published (the
/// dead-lettering headers left behind).
fn republished(stored: &Stored) -> BasicProperties {
    let mut headers = FieldTable::default();
    if let Value::Object(fields) = &stored.headers {
        for (name, value) in fields {
            if name.starts_with("x-") {
                continue;
            }
            if let Value::String(text) = value {
                headers.insert(
                    ShortString::from(name.as_str()),
                    AMQPValue::LongString(LongString::from(text.as_bytes().to_vec())),
                );
            }
        }
    }
    let mut properties = BasicProperties::default()
        .with_message_id(ShortString::from(stored.letter.message_id.as_str()))
        .with_type(ShortString::from(stored.letter.routing_key.as_str()))
        .with_delivery_mode(2)
        .with_headers(headers);
    if let Some(content_type) = &stored.content_type {
        properties = properties.with_content_type(ShortString::from(content_type.as_str()));
    }
    properties
}

pub(super) async fn publish(ops: &Ops, stored: &Stored) -> anyhow::Result<()> {
    let confirmed = tokio::time::timeout(Duration::from_secs(10), async {
        let connection = amqp::connect(&ops.amqp_url, &format!("{}-redrive", ops.service)).await?;
        let channel = connection.create_channel().await?;
        channel
            .confirm_select(ConfirmSelectOptions::default())
            .await?;
        let confirmation = channel
            .basic_publish(
                ShortString::from(format!("{}.redrive", ops.queue)),
                ShortString::from(stored.letter.routing_key.as_str()),
                BasicPublishOptions::default(),
                &stored.body,
                republished(stored),
            )
            .await?
            .await?;
        connection.close(200, "redriven".into()).await.ok();
        anyhow::ensure!(
            confirmation.is_ack(),
            "the broker did not confirm the redrive"
        );
        Ok(())
    })
    .await;
    confirmed.unwrap_or_else(|_| Err(anyhow::anyhow!("the broker did not answer in time")))
}
