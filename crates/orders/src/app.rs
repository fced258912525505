//! Start-up: build the application from settings and serve it.
//!
//! `Application::build` binds the listener first, so port 0 works and tests
//! learn the real port before the server runs.

use std::{sync::Arc, time::Duration};

use actix_web::{App, HttpServer, web};
use platform::{
    auth::{JwtVerifier, ServiceCredentials},
    db::{self, PgPool},
    http::{self, Readiness},
    jobs::Worker,
    json::BodyLimit,
    relay::Relay,
};
use tokio::{sync::Notify, task::JoinHandle};
use tracing_actix_web::TracingLogger;
use utoipa::OpenApi;
use utoipa_swagger_ui::SwaggerUi;

use crate::{
    api,
    catalog::Catalog,
    config::Settings,
    domain::{Promotions, pricing::Pricing},
    messaging::{OUTBOX, dispatcher::Dispatcher, payment_events::PaymentEvents},
    service::{KeyPolicy, Orders, PAY, REFUND, RELEASE_STOCK},
    store::JOBS,
    users::UserDirectory,
};

/// The running service (HTTP server and background tasks).
pub struct Application(http::Running);

/// The outbox relay, the `payment.*` consumer, the job worker (charges,
/// refunds, stock releases) and the sweepers.
fn spawn_background(
    settings: &Settings,
    pool: &PgPool,
    orders: &Arc<Orders>,
    wake_jobs: Arc<Notify>,
    broker_link: Arc<http::Link>,
    stop: &http::Stop,
) -> anyhow::Result<Background> {
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
    let credentials = ServiceCredentials::resolve(
        settings.payments.service_token.as_ref(),
        &settings.auth,
        "payments",
        "svc-orders",
        crate::messaging::dispatcher::SCOPES,
        "payments.service_token",
    )?;
    let dispatcher = Arc::new(Dispatcher::new(
        orders.clone(),
        &settings.payments,
        credentials,
    )?);
    let worker = Worker::new(pool.clone(), JOBS, wake_jobs, settings.jobs.clone())
        .handle(PAY, dispatcher.clone())
        .handle(REFUND, dispatcher.clone())
        .handle(RELEASE_STOCK, dispatcher);
    let graceful = vec![
        tokio::spawn(relay.run(stop.clone())),
        tokio::spawn(platform::consumer::run(
            settings.amqp.clone(),
            "orders",
            Arc::new(PaymentEvents {
                orders: orders.clone(),
            }),
            broker_link,
            stop.clone(),
        )),
        tokio::spawn(worker.run(stop.clone())),
    ];
    let others = vec![
        tokio::spawn(sweep_keys(orders.clone())),
        tokio::spawn(platform::retention::run(
            pool.clone(),
            retention_rules(&settings.retention),
            settings.retention.clone(),
        )),
        tokio::spawn(expire_unpaid(orders.clone(), settings.unpaid.clone())),
    ];
    Ok(Background { graceful, others })
}

/// Background loops: those that finish their work on stop, and the others.
struct Background {
    graceful: Vec<JoinHandle<()>>,
    others: Vec<JoinHandle<()>>,
}

/// Cancels orders left unpaid longer than configured.
async fn expire_unpaid(orders: Arc<Orders>, config: crate::config::UnpaidConfig) {
    if config.cancel_after_seconds <= 0 {
        tracing::info!("automatic cancellation of unpaid orders is off");
        return;
    }
    let unpaid_for = time::Duration::seconds(config.cancel_after_seconds);
    let mut every = tokio::time::interval(Duration::from_millis(config.sweep_every_ms.max(100)));
    loop {
        every.tick().await;
        match orders.expire_unpaid(unpaid_for).await {
            Ok(expired) if expired > 0 => tracing::info!(expired, "unpaid orders cancelled"),
            Ok(_) => {}
            Err(error) => tracing::warn!(error.message = %error, "cancelling unpaid orders failed"),
        }
    }
}

/// Forgets expired Idempotency-Keys every ten minutes.
async fn sweep_keys(orders: Arc<Orders>) {
    let mut every = tokio::time::interval(Duration::from_secs(600));
    loop {
        every.tick().await;
        match orders.sweep_keys().await {
            Ok(swept) if swept > 0 => tracing::info!(swept, "expired idempotency keys removed"),
            Ok(_) => {}
            Err(error) => {
                tracing::warn!(error.message = %error, "sweeping idempotency keys failed")
            }
        }
    }
}

impl Application {
    pub async fn build(settings: Settings) -> anyhow::Result<Application> {
        if settings.database.migrate_on_start {
            let applied =
                db::run_migrations(&settings.database.url, "orders", crate::MIGRATIONS).await?;
            tracing::info!(migrations.applied = ?applied, "database schema is up to date");
        }
        platform::amqp::declare_topology(&settings.amqp, "orders").await;
        let pool = db::build_pool(&settings.database)?;
        let metrics_pool = pool.clone();
        let verifier = web::Data::new(JwtVerifier::from_config(&settings.auth)?);
        let wake_jobs = Arc::new(Notify::new());
        let users = UserDirectory::from_config(
            &settings.user_service,
            settings.auth.hs256_secret.as_ref(),
            &settings.auth.issuer,
        )?;
        if users.is_none() {
            tracing::warn!("user validation is off: user_service.url is not set");
        }
        let orders = Arc::new(
            Orders::new(
                pool.clone(),
                wake_jobs.clone(),
                KeyPolicy {
                    ttl: time::Duration::seconds(settings.idempotency.ttl_seconds),
                    stale_after: time::Duration::seconds(settings.idempotency.stale_after_seconds),
                },
                users,
                Pricing::from_config(&settings.pricing).map_err(anyhow::Error::msg)?,
                Promotions::from_config(&settings.promotions).map_err(anyhow::Error::msg)?,
                Catalog::from_config(
                    &settings.catalog,
                    settings.auth.hs256_secret.as_ref(),
                    &settings.auth.issuer,
                )?,
            )
            .with_history_limits(
                settings.history.max_events_per_order,
                settings.history.max_page,
            ),
        );
        if !orders.has_catalog() {
            tracing::warn!(
                "no catalogue: client-sent prices are accepted and no stock is reserved"
            );
        }
        let broker_link = Arc::new(http::Link::default());
        let database_link = Arc::new(http::Link::default());
        let (stop, stopping) = http::stop_signal();
        let tasks = spawn_background(
            &settings,
            &pool,
            &orders,
            wake_jobs,
            broker_link.clone(),
            &stopping,
        )?;
        let orders = web::Data::from(orders);
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
                .app_data(orders.clone())
                .app_data(readiness.clone())
                .app_data(body_limit)
                .configure(http::extractor_config)
                .configure(http::operations)
                .app_data(limits.clone())
                .configure(api::configure)
                .service(SwaggerUi::new("/docs/{_:.*}").url("/openapi.json", openapi.clone()))
                .default_service(web::to(http::route_not_found))
        })
        .listen(listener)?;
        if settings.http.workers > 0 {
            server = server.workers(settings.http.workers);
        }
        let grace = Duration::from_secs(settings.http.shutdown_timeout_seconds);
        server = server.shutdown_timeout(settings.http.shutdown_timeout_seconds);
        tracing::info!(http.port = port, "orders is listening");
        Ok(Application(
            http::Running::new(port, server.run(), tasks.others).with_graceful(
                stop,
                tasks.graceful,
                grace,
            ),
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

/// What `retention` prunes in schema `orders` (its event store is the
/// history and is never pruned).
pub fn retention_rules(
    config: &platform::retention::RetentionConfig,
) -> Vec<platform::retention::Rule> {
    platform::retention::standard_rules("orders", config)
}
