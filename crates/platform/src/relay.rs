//! The outbox relay: publishes committed events to RabbitMQ, in order, and marks
//! each published only after the broker confirms it.
//!
//! - **Woken when events are committed**: a writer calls
//!   [`OutboxSignal::written`] after its commit. That wakes the relay of its own
//!   process directly; an instance that is not the relay's leader tells the
//!   leader with a `NOTIFY`, sent after the commit by a small task of its own
//!   (at most one per `coalesce` interval, in a transaction that writes
//!   nothing). The writers' transactions never `NOTIFY` themselves: PostgreSQL
//!   serialises the commits of notifying transactions on one lock, held across
//!   the WAL flush, which cost order creation a third of its throughput. The
//!   relay also polls slowly (`poll`) as a safety net. No busy polling.
//! - **Pipelined confirms**: a batch is published without waiting, then the
//!   confirms are awaited together. Only the acknowledged prefix is marked
//!   published; on a nack or a broken connection the rest is published again
//!   (at-least-once: consumers deduplicate by event id).
//! - **One active relay per service**: a session-level advisory lock elects
//!   the relay; other instances wait on standby and take over when the holder's
//!   connection goes away. One publisher keeps each order's events in order.
//! - **Survives outages**: any database or broker error ends the session; the
//!   relay reconnects with exponential back-off and resumes from the table,
//!   which still holds every unpublished event.

use crate::db::Prepared;
use std::{
    pin::pin,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use anyhow::Context;
use contracts::{amqp::to_message, cloud::EventMeta};
use diesel::{
    QueryableByName,
    sql_types::{Array, BigInt, Bool, Integer, Nullable, Text, Timestamptz},
};
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use futures_util::{FutureExt, StreamExt};
use lapin::{
    Channel, options::BasicPublishOptions, options::ConfirmSelectOptions, types::ShortString,
};
use secrecy::SecretString;
use time::OffsetDateTime;
use tokio::sync::Notify;
use uuid::Uuid;

use crate::amqp;
use crate::resilience::Reconnect;

/// Where a service's outbox is and how its events are described.
#[derive(Debug, Clone, Copy)]
pub struct OutboxSource {
    /// Service name: names the leader lock and the AMQP connection.
    pub name: &'static str,
    /// The outbox table (schema-qualified): `position`, `event_type`,
    /// `occurred_at` and `published_at` columns, what the operators'
    /// console reads and marks for re-publishing.
    pub table: &'static str,
    /// The channel the relay LISTENs on; instances that do not lead it
    /// `NOTIFY` it there after committing events ([`nudge`]).
    pub notify_channel: &'static str,
    /// The SQL expressions of an [`OutboxRow`]'s `subject` (text),
    /// `sequence` (int4 or NULL) and `data` (JSON text) in `table`.
    pub subject: &'static str,
    pub sequence: &'static str,
    pub data: &'static str,
    /// CloudEvents `source`.
    pub source: &'static str,
    /// CloudEvents `dataschema` of an event type.
    pub data_schema: fn(&str) -> Option<String>,
}

impl OutboxSource {
    /// Selects unpublished events oldest first, as [`OutboxRow`] columns;
    /// `$1` is the batch size.
    fn select_unpublished(&self) -> String {
        format!(
            "SELECT position, id, {subject} AS subject, {sequence} AS sequence, event_type, \
             {data} AS data, traceparent, occurred_at FROM {table} WHERE published_at IS NULL \
             ORDER BY position LIMIT $1",
            subject = self.subject,
            sequence = self.sequence,
            data = self.data,
            table = self.table,
        )
    }

    /// Marks events published; `$1` is an array of positions.
    fn mark_published(&self) -> String {
        format!(
            "UPDATE {} SET published_at = now() WHERE position = ANY($1)",
            self.table
        )
    }

    /// Counts unpublished events (`backlog`) and the age of the oldest in
    /// seconds (`oldest`), for the metrics.
    fn backlog(&self) -> String {
        format!(
            "SELECT count(*)::int8 AS backlog, \
             COALESCE(EXTRACT(EPOCH FROM now() - min(occurred_at)), 0)::float8 AS oldest \
             FROM {} WHERE published_at IS NULL",
            self.table
        )
    }
}

/// One unpublished event, as every outbox table can present it.
#[derive(Debug, QueryableByName)]
pub struct OutboxRow {
    #[diesel(sql_type = BigInt)]
    pub position: i64,
    #[diesel(sql_type = diesel::sql_types::Uuid)]
    pub id: Uuid,
    #[diesel(sql_type = Text)]
    pub subject: String,
    #[diesel(sql_type = Nullable<Integer>)]
    pub sequence: Option<i32>,
    #[diesel(sql_type = Text)]
    pub event_type: String,
    /// The event's data as stored: JSON text, published as it is.
    #[diesel(sql_type = Text)]
    pub data: String,
    #[diesel(sql_type = Nullable<Text>)]
    pub traceparent: Option<String>,
    #[diesel(sql_type = Timestamptz)]
    pub occurred_at: OffsetDateTime,
}

#[derive(QueryableByName)]
struct Backlog {
    #[diesel(sql_type = BigInt)]
    backlog: i64,
    #[diesel(sql_type = diesel::sql_types::Double)]
    oldest: f64,
}

/// Refreshes `outbox_backlog_events` and `outbox_oldest_unpublished_age_seconds`.
pub async fn record_backlog(pool: &crate::db::PgPool, source: &OutboxSource) {
    let measured = async {
        let mut conn = crate::db::connection(pool).await?;
        let row: Backlog = Prepared(diesel::sql_query(source.backlog()))
            .get_result(&mut conn)
            .await?;
        Ok::<_, anyhow::Error>(row)
    }
    .await;
    match measured {
        Ok(row) => {
            metrics::gauge!("outbox_backlog_events").set(row.backlog as f64);
            metrics::gauge!("outbox_oldest_unpublished_age_seconds").set(row.oldest);
        }
        Err(error) => {
            tracing::warn!(error.message = %format!("{error:#}"), "could not measure the outbox")
        }
    }
}

#[derive(QueryableByName)]
struct Locked {
    #[diesel(sql_type = Bool)]
    locked: bool,
}

/// How writers tell the relay that events were committed. Cheap to clone;
/// one per process, shared by the writers, the relay and [`nudge`].
#[derive(Debug, Clone, Default)]
pub struct OutboxSignal {
    inner: Arc<Signal>,
}

#[derive(Debug, Default)]
struct Signal {
    /// Wakes this process's relay.
    local: Notify,
    /// Asks [`nudge`] to notify the leader elsewhere.
    remote: Notify,
    /// This process's relay holds the leader lock.
    leading: AtomicBool,
}

impl OutboxSignal {
    /// Events were committed: publish them. Call it after the commit (a
    /// relay woken earlier could look before the rows are visible and then
    /// sleep until its next poll).
    pub fn written(&self) {
        self.inner.local.notify_one();
        if !AtomicBool::load(&self.inner.leading, Ordering::Relaxed) {
            self.inner.remote.notify_one();
        }
    }
}

/// Marks the process as leading while the relay session lives.
struct Leading<'a>(&'a Signal);

impl<'a> Leading<'a> {
    fn new(signal: &'a Signal) -> Self {
        signal.leading.store(true, Ordering::Relaxed);
        Self(signal)
    }
}

impl Drop for Leading<'_> {
    fn drop(&mut self) {
        self.0.leading.store(false, Ordering::Relaxed);
    }
}

/// Tells the relay leader of another instance that this one committed
/// events: one `NOTIFY` on `source.notify_channel` per wake-up, at most one
/// per `coalesce`. Does nothing while this process leads (its relay was woken
/// directly). Runs until the process stops.
pub async fn nudge(
    pool: crate::db::PgPool,
    source: OutboxSource,
    signal: OutboxSignal,
    coalesce: Duration,
) {
    loop {
        signal.inner.remote.notified().await;
        if AtomicBool::load(&signal.inner.leading, Ordering::Relaxed) {
            continue;
        }
        let sent = async {
            let mut conn = crate::db::connection(&pool).await?;
            Prepared(
                diesel::sql_query("SELECT pg_notify($1, '')")
                    .bind::<Text, _>(source.notify_channel),
            )
            .execute(&mut conn)
            .await?;
            Ok::<_, anyhow::Error>(())
        }
        .await;
        if let Err(error) = sent {
            // The leader still finds the events at its next poll.
            tracing::warn!(relay = source.name, error.message = %format!("{error:#}"), "could not notify the relay");
        }
        tokio::time::sleep(coalesce).await;
    }
}

/// A relay, ready to [`run`](Relay::run).
#[derive(Debug, Clone)]
pub struct Relay {
    pub database_url: SecretString,
    pub amqp_url: SecretString,
    pub exchange: String,
    pub source: OutboxSource,
    pub batch_size: i64,
    /// Safety-net poll interval when no notification arrives.
    pub poll: Duration,
    /// After a wake-up, wait this long so that events committed meanwhile
    /// join the batch: under load, one round of publishing and marking then
    /// carries many events instead of one.
    pub coalesce: Duration,
    pub max_backoff_ms: u64,
    /// Writers of this process wake the relay through it.
    pub signal: OutboxSignal,
}

impl Relay {
    /// Relays until `stop`, reconnecting after any failure; a batch being
    /// published is finished first.
    pub async fn run(self, mut stop: crate::http::Stop) {
        let mut backoff = Reconnect::new(self.max_backoff_ms);
        loop {
            match self.session(&mut backoff, &mut stop).await {
                Ok(()) => return,
                Err(error) => {
                    tracing::warn!(
                        relay = self.source.name,
                        error.message = %format!("{error:#}"),
                        "outbox relay interrupted; reconnecting"
                    );
                    tokio::select! {
                        () = backoff.wait() => {}
                        () = crate::http::stopped(&mut stop) => return,
                    }
                }
            }
        }
    }

    async fn session(
        &self,
        backoff: &mut Reconnect,
        stop: &mut crate::http::Stop,
    ) -> anyhow::Result<()> {
        let mut db =
            crate::db::connect(secrecy::ExposeSecret::expose_secret(&self.database_url)).await?;
        tokio::select! {
            led = self.become_leader(&mut db) => led?,
            () = crate::http::stopped(stop) => return Ok(()),
        }
        let _leading = Leading::new(&self.signal.inner);
        diesel::sql_query(format!("LISTEN {}", self.source.notify_channel))
            .execute(&mut db)
            .await
            .context("listening for outbox notifications")?;
        let connection =
            amqp::connect(&self.amqp_url, &format!("{}-relay", self.source.name)).await?;
        let channel = connection
            .create_channel()
            .await
            .context("opening a channel")?;
        channel
            .confirm_select(ConfirmSelectOptions::default())
            .await
            .context("enabling publisher confirms")?;
        amqp::declare_exchange(&channel, &self.exchange).await?;
        tracing::info!(relay = self.source.name, "outbox relay connected");
        backoff.reset();

        loop {
            let published = self.publish_batch(&mut db, &channel).await?;
            if *stop.borrow() {
                connection.close(200, "stopping".into()).await.ok();
                return Ok(());
            }
            if published as i64 == self.batch_size {
                continue;
            }
            let mut notifications = pin!(db.notifications_stream());
            let woken = tokio::select! {
                () = self.signal.inner.local.notified() => true,
                waited = tokio::time::timeout(self.poll, notifications.next()) => match waited {
                    Ok(Some(Err(error))) => return Err(error).context("waiting for notifications"),
                    Ok(None) => anyhow::bail!("the notification stream ended"),
                    Ok(Some(Ok(_))) => true,
                    Err(_) => false,
                },
                () = crate::http::stopped(stop) => false,
            };
            if woken {
                tokio::time::sleep(self.coalesce).await;
                drain(notifications.as_mut())?;
            }
        }
    }
}

/// Takes every notification already received: the batch about to be read
/// serves them all, so they must not wake the relay once each afterwards.
fn drain(
    mut notifications: std::pin::Pin<
        &mut impl futures_util::Stream<Item = diesel::QueryResult<diesel::pg::PgNotification>>,
    >,
) -> anyhow::Result<()> {
    loop {
        match notifications.next().now_or_never() {
            Some(Some(Ok(_))) => {}
            Some(Some(Err(error))) => return Err(error).context("waiting for notifications"),
            Some(None) => anyhow::bail!("the notification stream ended"),
            None => return Ok(()),
        }
    }
}

impl Relay {
    /// Waits until this instance holds the relay lock of its service.
    async fn become_leader(&self, db: &mut AsyncPgConnection) -> anyhow::Result<()> {
        let mut announced = false;
        loop {
            let Locked { locked } = diesel::sql_query(
                "SELECT pg_try_advisory_lock(hashtext('relay:' || $1)) AS locked",
            )
            .bind::<Text, _>(self.source.name)
            .get_result(db)
            .await
            .context("taking the relay lock")?;
            if locked {
                return Ok(());
            }
            if !announced {
                tracing::info!(
                    relay = self.source.name,
                    "another instance relays; standing by"
                );
                announced = true;
            }
            tokio::time::sleep(self.poll).await;
        }
    }

    /// Publishes one batch; returns how many events were confirmed.
    async fn publish_batch(
        &self,
        db: &mut AsyncPgConnection,
        channel: &Channel,
    ) -> anyhow::Result<usize> {
        let rows: Vec<OutboxRow> = Prepared(
            diesel::sql_query(self.source.select_unpublished()).bind::<BigInt, _>(self.batch_size),
        )
        .load(db)
        .await
        .context("reading the outbox")?;
        if rows.is_empty() {
            return Ok(0);
        }
        let mut confirms = Vec::with_capacity(rows.len());
        for row in &rows {
            let meta = EventMeta {
                id: row.id,
                source: self.source.source.to_owned(),
                event_type: row.event_type.clone(),
                subject: row.subject.clone(),
                time: row.occurred_at,
                data_schema: (self.source.data_schema)(&row.event_type),
                sequence: row.sequence.and_then(|s| u64::try_from(s).ok()),
                traceparent: row.traceparent.clone(),
            };
            let message = to_message(&meta, &row.data)
                .with_context(|| format!("building event {}", row.id))?;
            let confirm = channel
                .basic_publish(
                    ShortString::from(self.exchange.as_str()),
                    ShortString::from(message.routing_key.as_str()),
                    BasicPublishOptions::default(),
                    &message.body,
                    amqp::properties(&message),
                )
                .await
                .context("publishing")?;
            confirms.push(confirm);
        }
        let mut acknowledged = Vec::with_capacity(rows.len());
        let mut refused = None;
        for (row, confirm) in rows.iter().zip(confirms) {
            let confirmation = confirm.await.context("awaiting a publisher confirm")?;
            if confirmation.is_ack() {
                acknowledged.push(row.position);
            } else {
                refused = Some(row.id);
                break;
            }
        }
        if !acknowledged.is_empty() {
            Prepared(
                diesel::sql_query(self.source.mark_published())
                    .bind::<Array<BigInt>, _>(&acknowledged),
            )
            .execute(db)
            .await
            .context("marking events published")?;
        }
        metrics::counter!("outbox_published_events_total").increment(acknowledged.len() as u64);
        tracing::debug!(
            relay = self.source.name,
            published = acknowledged.len(),
            "relayed"
        );
        if let Some(id) = refused {
            anyhow::bail!("the broker refused event {id}");
        }
        Ok(acknowledged.len())
    }
}
