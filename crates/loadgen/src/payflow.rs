//! The full pay flow, counted where a shop would see it: orders are placed
//! with a card (`POST /api/v1/orders`), and each is done when its
//! `order.paid` reaches a subscriber of the orders exchange. With
//! `--wait-paid`, each connection waits for its order's `order.paid` before
//! placing the next: a closed loop over the whole flow, as pgbench runs its
//! floor (a client runs a whole paid order, then the next); without it,
//! orders are placed as fast as they are accepted, and the pipeline behind
//! them falls seconds behind. Latency is from
//! the moment the order was sent to the moment `order.paid` arrived, for
//! the orders placed after the warm-up; throughput is every order paid after
//! the warm-up (whenever placed) per second, up to the last one measured.

use std::{
    collections::{HashMap, HashSet},
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use bytes::Bytes;
use futures_util::StreamExt;
use lapin::{
    Connection as Broker, ConnectionProperties,
    options::{BasicConsumeOptions, QueueBindOptions, QueueDeclareOptions},
    types::FieldTable,
};
use serde_json::json;

use crate::http::{Connection, Pacer, Target, Template};
use crate::{Output, stats};

#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    /// `POST` target, e.g. `http://127.0.0.1:18080/api/v1/orders`.
    #[arg(long)]
    pub url: String,
    /// A file holding an order body with a `payment`.
    #[arg(long)]
    pub body: std::path::PathBuf,
    #[arg(long, env = "TOKEN")]
    pub token: String,
    #[arg(long, default_value = "amqp://guest:guest@127.0.0.1:5672/%2f")]
    pub amqp: String,
    /// The exchange orders publishes to.
    #[arg(long)]
    pub exchange: String,
    #[arg(long, default_value_t = 8)]
    pub concurrency: usize,
    /// Orders per second in all (open loop); unset: as fast as accepted.
    #[arg(long)]
    pub rate: Option<f64>,
    /// Seconds of placing orders.
    #[arg(long, default_value_t = 10.0)]
    pub duration: f64,
    /// Seconds of orders placed before measuring (their `order.paid` is
    /// not counted): pools and connections open, statements are prepared.
    #[arg(long, default_value_t = 2.0)]
    pub warmup: f64,
    /// Each connection waits for its order's `order.paid` (at most 30 s)
    /// before placing the next.
    #[arg(long)]
    pub wait_paid: bool,
    /// How long to wait for the last orders to be paid.
    #[arg(long, default_value_t = 60.0)]
    pub drain: f64,
    #[command(flatten)]
    pub output: Output,
}

/// Orders placed and not yet paid: when each was sent, and who waits for
/// it (`--wait-paid`); and the `order.paid`s that came before their
/// placer heard its order's id.
#[derive(Default)]
struct Flows {
    sent: HashMap<String, (Instant, Option<tokio::sync::oneshot::Sender<()>>)>,
    early: HashSet<String>,
}

type Sent = Arc<Mutex<Flows>>;

pub async fn run(args: Args) -> anyhow::Result<()> {
    // The subscriber first, so no order.paid is missed.
    let broker = Broker::connect(&args.amqp, ConnectionProperties::default()).await?;
    let channel = broker.create_channel().await?;
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
    channel
        .queue_bind(
            queue.name().clone(),
            args.exchange.as_str().into(),
            contracts::order::OrderEventType::Paid.as_str().into(),
            QueueBindOptions::default(),
            FieldTable::default(),
        )
        .await?;
    let mut deliveries = channel
        .basic_consume(
            queue.name().clone(),
            "loadgen".into(),
            BasicConsumeOptions {
                no_ack: true,
                ..BasicConsumeOptions::default()
            },
            FieldTable::default(),
        )
        .await?;

    let sent: Sent = Arc::default();
    let template = Arc::new(Template {
        method: hyper::Method::POST,
        target: Target::parse(&args.url)?,
        bearer: format!("Bearer {}", args.token),
        body: Bytes::from(std::fs::read(&args.body)?),
    });
    let pacer = args.rate.map(Pacer::new);
    let start = Instant::now();
    let measure_from = start + Duration::from_secs_f64(args.warmup);
    let until = measure_from + Duration::from_secs_f64(args.duration);
    let placers: Vec<_> = (0..args.concurrency.max(1))
        .map(|_| {
            let (template, pacer, sent) = (template.clone(), pacer.clone(), sent.clone());
            let wait = args.wait_paid;
            tokio::spawn(
                async move { place(&template, pacer, measure_from, until, &sent, wait).await },
            )
        })
        .collect();

    // The placers are awaited beside the subscriber, never before it: an
    // `order.paid` must be stamped when it arrives, not after the last
    // placer's paced turn (which put up to concurrency/rate seconds onto the
    // latency of the run's last orders).
    let mut placing = tokio::spawn(async move {
        let (mut total, mut refused) = (0_u64, 0_u64);
        for placer in placers {
            let (placed, failed) = placer.await??;
            total += placed;
            refused += failed;
        }
        Ok::<_, anyhow::Error>((total, refused))
    });
    let mut latencies = stats::histogram()?;
    let mut last_paid = start;
    // Orders paid from `measure_from` on, whenever placed: the throughput.
    let mut completed = 0_u64;
    let mut placed_total = None;
    let drain_until = until + Duration::from_secs_f64(args.drain);
    let mut received = 0_u64;
    loop {
        if placed_total.is_some_and(|total| latencies.len() >= total)
            || Instant::now() >= drain_until
        {
            break;
        }
        let next = tokio::select! {
            placed = &mut placing, if placed_total.is_none() => {
                let (total, refused) = placed??;
                if refused > 0 {
                    eprintln!("{refused} orders were refused");
                }
                placed_total = Some(total);
                continue;
            }
            next = tokio::time::timeout(Duration::from_millis(200), deliveries.next()) => next,
        };
        let Ok(Some(Ok(delivery))) = next else {
            continue;
        };
        let arrived = Instant::now();
        received += 1;
        let subject = serde_json::from_slice::<serde_json::Value>(&delivery.data)
            .ok()
            .and_then(|event| event["subject"].as_str().map(str::to_owned));
        let Some(subject) = subject else { continue };
        let Some((started, waiting)) = sent.lock().map_or(None, |mut flows| {
            let found = flows.sent.remove(&subject);
            if found.is_none() {
                flows.early.insert(subject);
            }
            found
        }) else {
            if arrived >= measure_from {
                completed += 1;
                last_paid = arrived;
            }
            continue;
        };
        if let Some(waiting) = waiting {
            waiting.send(()).ok();
        }
        if arrived >= measure_from {
            completed += 1;
            last_paid = arrived;
        }
        if started >= measure_from {
            stats::record(&mut latencies, arrived - started);
        }
    }
    let placed = placed_total.unwrap_or_default();
    eprintln!(
        "placed {placed}, order.paid received {received}, matched {}",
        latencies.len()
    );
    let seconds = (last_paid.max(measure_from) - measure_from).as_secs_f64();
    let summary = stats::with(
        stats::summary(&latencies, seconds, placed.saturating_sub(latencies.len())),
        json!({
            "kind": "service",
            "name": "payflow",
            "concurrency": args.concurrency,
            "rate": args.rate,
            "placed": placed,
            "not_paid": placed.saturating_sub(latencies.len()),
            "throughput": stats::per_second(completed, seconds),
        }),
    );
    println!("{summary}");
    broker.close(200, "done".into()).await.ok();
    args.output.append(&summary)
}

/// Places orders until `until`; returns how many placed from `measure_from`
/// on, and how many were refused then.
async fn place(
    template: &Template,
    pacer: Option<Arc<Pacer>>,
    measure_from: Instant,
    until: Instant,
    sent: &Sent,
    wait_paid: bool,
) -> anyhow::Result<(u64, u64)> {
    let mut connection = Connection::open(&template.target).await?;
    let (mut placed, mut refused) = (0, 0);
    while Instant::now() < until {
        if let Some(pacer) = &pacer {
            pacer.turn().await;
        }
        let started = Instant::now();
        match connection.send(template.request()?).await {
            Ok((status, body)) if status.as_u16() == 201 => {
                let id = serde_json::from_slice::<serde_json::Value>(&body)
                    .ok()
                    .and_then(|order| order["id"].as_str().map(str::to_owned));
                let Some(id) = id else { continue };
                let (paid, waiting) = tokio::sync::oneshot::channel();
                let early = match sent.lock() {
                    Ok(mut flows) => {
                        let early = flows.early.remove(&id);
                        if !early {
                            flows.sent.insert(id, (started, wait_paid.then_some(paid)));
                        }
                        early
                    }
                    Err(_) => continue,
                };
                placed += u64::from(started >= measure_from && !early);
                if wait_paid && !early {
                    tokio::time::timeout(Duration::from_secs(30), waiting)
                        .await
                        .ok();
                }
            }
            Ok(_) => refused += u64::from(started >= measure_from),
            Err(_) => {
                refused += u64::from(started >= measure_from);
                connection = Connection::open(&template.target).await?;
            }
        }
    }
    Ok((placed, refused))
}
