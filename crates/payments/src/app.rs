//! Start-up: HTTP API, outbox relay, `order.cancelled` consumer, key sweeper.

use std::{sync::Arc, time::Duration};

use actix_web::{App, HttpServer, web};
use platform::{
    auth::{JwtVerifier, ServiceCredentials},
    db,
    http::{self, Readiness},
    json::BodyLimit,
    relay::{OutboxSource, Relay},
};
use tracing_actix_web::TracingLogger;
use utoipa::OpenApi;
use utoipa_swagger_ui::SwaggerUi;

use crate::{
    api,
    config::Settings,
    consumer::OrderCancelled,
    orders::OrdersClient,
    provider::{PaymentProvider, SimulatedProvider},
    service::{JobHandler, KeyPolicy, Payments, RECONCILE, REFUND, Retry},
};

/// Where payments' outbox is.
pub const OUTBOX: OutboxSource = OutboxSource {
    name: "payments",
    notify_channel: "payments_outbox",
    select_unpublished: "SELECT position, id, subject, NULL::int4 AS sequence, event_type, data, \
        traceparent, occurred_at FROM payments.outbox WHERE published_at IS NULL \
        ORDER BY position LIMIT $1",
    mark_published: "UPDATE payments.outbox SET published_at = now() WHERE position = ANY($1)",
    backlog: "SELECT count(*)::int8 AS backlog, \
        COALESCE(EXTRACT(EPOCH FROM now() - min(occurred_at)), 0)::float8 AS oldest \
        FROM payments.outbox WHERE published_at IS NULL",
    source: contracts::payment::SOURCE,
    data_schema: schema_of,
};

fn schema_of(event_type: &str) -> Option<String> {
    Some(format!(
        "https://schemas.orders.example/events/{event_type}.v1.json"
    ))
}

/// The running service (HTTP server and background tasks).
pub struct Application(http::Running);

impl Application {
    pub async fn build(settings: Settings) -> anyhow::Result<Application> {
        let provider = Arc::new(SimulatedProvider::new(Duration::from_millis(
            settings.provider.latency_ms,
        )));
        Self::build_with_provider(settings, provider).await
    }

    /// With another payment provider (tests that crash mid-charge).
    pub async fn build_with_provider(
        settings: Settings,
        provider: Arc<dyn PaymentProvider>,
    ) -> anyhow::Result<Application> {
        if settings.database.migrate_on_start {
            let applied =
                db::run_migrations(&settings.database.url, "payments", crate::MIGRATIONS).await?;
            tracing::info!(migrations.applied = ?applied, "database schema is up to date");
        }
        platform::amqp::declare_topology(&settings.amqp, "payments").await;
        let pool = db::build_pool(&settings.database)?;
        let metrics_pool = pool.clone();
        let credentials = ServiceCredentials::resolve(
            settings.orders.service_token.as_ref(),
            &settings.auth,
            "orders",
            "svc-payments",
            crate::orders::SCOPES,
            "orders.service_token",
        )?;
        let orders = OrdersClient::new(&settings.orders, credentials)?;
        let wake_jobs = Arc::new(tokio::sync::Notify::new());
        let payments = Arc::new(Payments::new(
            pool.clone(),
            provider,
            orders,
            Retry {
                attempts: settings.provider.attempts,
                backoff: Duration::from_millis(settings.provider.backoff_ms),
            },
            KeyPolicy {
                ttl: time::Duration::seconds(settings.idempotency.ttl_seconds),
                stale_after: time::Duration::seconds(settings.idempotency.stale_after_seconds),
            },
            wake_jobs.clone(),
        ));
        let jobs = Arc::new(JobHandler {
            payments: payments.clone(),
        });
        let worker = platform::jobs::Worker::new(
            pool.clone(),
            crate::store::JOBS,
            wake_jobs,
            settings.jobs.clone(),
        )
        .handle(REFUND, jobs.clone())
        .handle(RECONCILE, jobs);

        let relay = Relay {
            database_url: settings.database.url.clone(),
            amqp_url: settings.amqp.url.clone(),
            exchange: settings.amqp.exchange.clone(),
            source: OUTBOX,
            batch_size: settings.relay.batch_size,
            poll: Duration::from_millis(settings.relay.poll_ms),
            coalesce: Duration::from_millis(settings.relay.coalesce_ms),
            max_backoff_ms: settings.amqp.max_backoff_ms,
        };
        let broker_link = Arc::new(http::Link::default());
        let database_link = Arc::new(http::Link::default());
        let sweeper = payments.clone();
        let reconciler = payments.clone();
        let reconcile = settings.reconcile.clone();
        let (stop, stopping) = http::stop_signal();
        let graceful = vec![
            tokio::spawn(relay.run(stopping.clone())),
            tokio::spawn(worker.run(stopping.clone())),
            tokio::spawn(platform::consumer::run(
                settings.amqp.clone(),
                "payments",
                Arc::new(OrderCancelled {
                    payments: payments.clone(),
                }),
                broker_link.clone(),
                stopping.clone(),
            )),
        ];
        let tasks = vec![
            tokio::spawn(platform::retention::run(
                pool.clone(),
                retention_rules(&settings.retention),
                settings.retention.clone(),
            )),
            tokio::spawn(async move {
                let stale = time::Duration::seconds(reconcile.stale_after_seconds);
                // The first scan one period after start, not at once.
                let period = Duration::from_millis(reconcile.scan_every_ms.max(10));
                let mut every =
                    tokio::time::interval_at(tokio::time::Instant::now() + period, period);
                loop {
                    every.tick().await;
                    match reconciler.find_stuck(stale).await {
                        Ok(0) => {}
                        Ok(found) => {
                            tracing::warn!(found, "payments stuck in processing; reconciling")
                        }
                        Err(error) => {
                            tracing::warn!(error.message = %error, "looking for stuck payments failed")
                        }
                    }
                }
            }),
            tokio::spawn(async move {
                let mut every = tokio::time::interval(Duration::from_secs(600));
                loop {
                    every.tick().await;
                    match sweeper.sweep_keys().await {
                        Ok(swept) if swept > 0 => {
                            tracing::info!(swept, "expired idempotency keys removed")
                        }
                        Ok(_) => {}
                        Err(error) => {
                            tracing::warn!(error.message = %error, "sweeping idempotency keys failed")
                        }
                    }
                }
            }),
        ];

        let verifier = web::Data::new(JwtVerifier::from_config(&settings.auth)?);
        let payments = web::Data::from(payments);
        http::watch(database_link.clone(), Duration::from_secs(2), move || {
            let pool = pool.clone();
            async move { db::ping(&pool).await }
        })
        .await;
        let readiness = web::Data::new(
            Readiness::default()
                .with_link("database", database_link)
                .with_link("broker", broker_link),
        );
        let metrics = web::Data::new(platform::metrics::Metrics::for_service(
            metrics_pool,
            OUTBOX,
        ));
        let limits = web::Data::new(settings.rate_limit.limits()?);
        let body_limit = BodyLimit(settings.http.body_limit_bytes);
        let openapi = api::ApiDoc::openapi();
        let (listener, port) = http::bind(&settings.http.host, settings.http.port)?;
        let mut server = HttpServer::new(move || {
            App::new()
                .wrap(actix_web::middleware::from_fn(
                    platform::metrics::track_requests,
                ))
                .wrap(TracingLogger::<platform::http::TracedRootSpan>::new())
                .app_data(metrics.clone())
                .service(platform::metrics::metrics_endpoint)
                .app_data(verifier.clone())
                .app_data(payments.clone())
                .app_data(limits.clone())
                .app_data(readiness.clone())
                .app_data(body_limit)
                .configure(http::extractor_config)
                .configure(http::operations)
                .configure(api::configure)
                .service(SwaggerUi::new("/docs/{_:.*}").url("/openapi.json", openapi.clone()))
                .default_service(web::to(http::route_not_found))
        })
        .listen(listener)?;
        if settings.http.workers > 0 {
            server = server.workers(settings.http.workers);
        }
        tracing::info!(http.port = port, "payments is listening");
        let grace = Duration::from_secs(settings.http.shutdown_timeout_seconds);
        server = server.shutdown_timeout(settings.http.shutdown_timeout_seconds);
        Ok(Application(
            http::Running::new(port, server.run(), tasks).with_graceful(stop, graceful, grace),
        ))
    }

    pub fn port(&self) -> u16 {
        self.0.port()
    }

    /// Serves until SIGINT/SIGTERM, drains in-flight requests, then stops the
    /// background tasks.
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        self.0.run_until_stopped().await
    }
}

/// What `retention` prunes in schema `payments`: the standard rules and
/// published outbox rows.
pub fn retention_rules(
    config: &platform::retention::RetentionConfig,
) -> Vec<platform::retention::Rule> {
    let mut rules = platform::retention::standard_rules("payments", config);
    rules.push(platform::retention::Rule {
        table: "payments.outbox".to_owned(),
        older_than: "published_at IS NOT NULL AND published_at < now() - $1 * interval '1 second'",
        max_age: platform::retention::days(config.outbox_days),
    });
    rules
}
