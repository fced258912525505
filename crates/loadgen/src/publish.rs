//! RabbitMQ's own limit: persistent messages of an event's size published
//! with confirms to a quorum queue (what the relay does), `--window`
//! confirms outstanding at once.

use std::time::{Duration, Instant};

use futures_util::{StreamExt, stream::FuturesUnordered};
use lapin::{
    BasicProperties, Connection, ConnectionProperties,
    options::{BasicPublishOptions, ConfirmSelectOptions, QueueDeclareOptions, QueueDeleteOptions},
    types::{AMQPValue, FieldTable},
};
use serde_json::json;

use crate::Output;

#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    #[arg(long, default_value = "amqp://guest:guest@127.0.0.1:5672/%2f")]
    pub amqp: String,
    #[arg(long, default_value_t = 5.0)]
    pub duration: f64,
    /// Unconfirmed messages in flight.
    #[arg(long, default_value_t = 256)]
    pub window: usize,
    /// Message size in bytes (an `order.created` is about 1.5 KiB).
    #[arg(long, default_value_t = 1500)]
    pub size: usize,
    #[command(flatten)]
    pub output: Output,
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    let connection = Connection::connect(&args.amqp, ConnectionProperties::default()).await?;
    let channel = connection.create_channel().await?;
    channel
        .confirm_select(ConfirmSelectOptions::default())
        .await?;
    let name = format!("loadgen.baseline.{}", uuid::Uuid::new_v4());
    let mut arguments = FieldTable::default();
    arguments.insert(
        "x-queue-type".into(),
        AMQPValue::LongString("quorum".into()),
    );
    channel
        .queue_declare(
            name.as_str().into(),
            QueueDeclareOptions {
                durable: true,
                ..QueueDeclareOptions::default()
            },
            arguments,
        )
        .await?;
    let body = vec![b'x'; args.size];
    let properties = BasicProperties::default().with_delivery_mode(2);
    let start = Instant::now();
    let until = start + Duration::from_secs_f64(args.duration);
    let mut in_flight = FuturesUnordered::new();
    let mut confirmed = 0_u64;
    while Instant::now() < until {
        while in_flight.len() < args.window {
            let publish = channel
                .basic_publish(
                    "".into(),
                    name.as_str().into(),
                    BasicPublishOptions::default(),
                    &body,
                    properties.clone(),
                )
                .await?;
            in_flight.push(publish);
        }
        if let Some(confirmation) = in_flight.next().await
            && confirmation?.is_ack()
        {
            confirmed += 1;
        }
    }
    while let Some(confirmation) = in_flight.next().await {
        if confirmation?.is_ack() {
            confirmed += 1;
        }
    }
    let seconds = start.elapsed().as_secs_f64();
    channel
        .queue_delete(name.as_str().into(), QueueDeleteOptions::default())
        .await?;
    connection.close(200, "done".into()).await.ok();
    let record = json!({
        "kind": "baseline",
        "name": "rabbitmq-confirmed-publish",
        "concurrency": args.window,
        "throughput": (confirmed as f64 / seconds * 10.0).round() / 10.0,
        "requests": confirmed,
    });
    println!("{record}");
    args.output.append(&record)
}
