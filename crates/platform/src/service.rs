//! Assembling a service: what every service's start-up does, once.
//!
//! [`Service::start`] migrates the schema (when configured), declares the
//! broker topology, builds the pool and starts the outbox relay and the
//! database watcher. The service then adds its own loops
//! ([`Service::until_stopped`] for those that finish their work on stop,
//! [`Service::every`] for periodic sweeps, [`Service::consume`] for its
//! consumer) and [`Service::serve`]s its routes behind the shared
//! middleware, operations endpoints and API description.

use std::{future::Future, sync::Arc, time::Duration};

use actix_web::{App, HttpServer, web};
use diesel_migrations::EmbeddedMigrations;
use tokio::task::JoinHandle;
use tracing_actix_web::TracingLogger;
use utoipa_swagger_ui::SwaggerUi;

use crate::{
    amqp::AmqpConfig,
    auth::{AuthConfig, JwtVerifier},
    config::{HttpConfig, RelayConfig},
    db::{self, DatabaseConfig, PgPool},
    http::{self, Link, Readiness, Running, Stop},
    json::BodyLimit,
    rate_limit::RateLimits,
    relay::{OutboxSignal, OutboxSource, Relay},
};

/// The settings every service has.
#[derive(Clone, Copy)]
pub struct Common<'a> {
    /// The service's name: its schema, queue prefix and log name.
    pub name: &'static str,
    pub http: &'a HttpConfig,
    pub database: &'a DatabaseConfig,
    pub amqp: &'a AmqpConfig,
    pub relay: &'a RelayConfig,
    pub auth: &'a AuthConfig,
}

/// A service being assembled: its pool, and the loops started so far.
pub struct Service {
    name: &'static str,
    http: HttpConfig,
    amqp: AmqpConfig,
    database_config: DatabaseConfig,
    /// The background tasks' pool (relay, consumer, jobs, sweeps); each HTTP
    /// worker has its own (see [`Service::serve`]).
    pub pool: PgPool,
    verifier: JwtVerifier,
    outbox: OutboxSource,
    signal: OutboxSignal,
    broker: Arc<Link>,
    database: Arc<Link>,
    stop: tokio::sync::watch::Sender<bool>,
    stopping: Stop,
    graceful: Vec<JoinHandle<()>>,
    others: Vec<JoinHandle<()>>,
    /// The operators' console, once [`Service::console`] opened it.
    ops: Option<Arc<crate::ops::Ops>>,
}

impl Service {
    /// Migrates (when `database.migrate_on_start`), declares the topology,
    /// builds the pool, and starts the relay of `outbox` and the database
    /// watcher behind `/ready`.
    pub async fn start(
        common: Common<'_>,
        migrations: EmbeddedMigrations,
        outbox: OutboxSource,
    ) -> anyhow::Result<Service> {
        if common.database.migrate_on_start {
            let applied = db::run_migrations(&common.database.url, common.name, migrations).await?;
            tracing::info!(migrations.applied = ?applied, "database schema is up to date");
        }
        crate::amqp::declare_topology(common.amqp, common.name).await;
        let pool = db::build_pool(common.database)?;
        let verifier = JwtVerifier::from_config(common.auth)?;
        let (stop, stopping) = http::stop_signal();
        let signal = OutboxSignal::default();
        let relay = Relay {
            database_url: common.database.url.clone(),
            amqp_url: common.amqp.url.clone(),
            exchange: common.amqp.exchange.clone(),
            source: outbox,
            batch_size: common.relay.batch_size,
            poll: Duration::from_millis(common.relay.poll_ms),
            coalesce: Duration::from_millis(common.relay.coalesce_ms),
            max_backoff_ms: common.amqp.max_backoff_ms,
            signal: signal.clone(),
        };
        let database = Arc::new(Link::default());
        let watched = pool.clone();
        http::watch(database.clone(), Duration::from_secs(2), move || {
            let pool = watched.clone();
            async move { db::ping(&pool).await }
        })
        .await;
        let mut service = Service {
            name: common.name,
            http: common.http.clone(),
            amqp: common.amqp.clone(),
            database_config: common.database.clone(),
            pool,
            verifier,
            outbox,
            signal: signal.clone(),
            broker: Arc::new(Link::default()),
            database,
            stop,
            stopping,
            graceful: Vec::new(),
            others: Vec::new(),
            ops: None,
        };
        service.until_stopped(|stop| relay.run(stop));
        service.spawn(crate::relay::nudge(
            service.pool.clone(),
            outbox,
            signal,
            Duration::from_millis(common.relay.coalesce_ms),
        ));
        Ok(service)
    }

    /// What the service's writers call after committing events
    /// ([`OutboxSignal::written`]).
    pub fn outbox_signal(&self) -> OutboxSignal {
        self.signal.clone()
    }

    /// Starts a loop that finishes what it holds when told to stop (within
    /// `http.shutdown_timeout_seconds` after the server has drained).
    pub fn until_stopped<F, Fut>(&mut self, run: F)
    where
        F: FnOnce(Stop) -> Fut,
        Fut: Future<Output = ()> + Send + 'static,
    {
        self.graceful.push(tokio::spawn(run(self.stopping.clone())));
    }

    /// Consumes the service's queue with `handler`; its broker session is
    /// the `broker` link of `/ready`.
    pub fn consume(&mut self, handler: Arc<dyn crate::consumer::Handler>) {
        let (config, name, link) = (self.amqp.clone(), self.name, self.broker.clone());
        self.until_stopped(move |stop| crate::consumer::run(config, name, handler, link, stop));
    }

    /// Runs `task` on a clone of `state` every `period` (the first run one
    /// period after start), logging what it did: `Ok(n)` with n > 0 as
    /// `done`, errors as `failed`. Stopped at once on shutdown (a sweep holds
    /// nothing).
    pub fn every<S, F, Fut, E>(&mut self, period: Duration, what: &'static str, state: S, task: F)
    where
        S: Clone + Send + Sync + 'static,
        F: Fn(S) -> Fut + Send + 'static,
        Fut: Future<Output = Result<usize, E>> + Send,
        E: std::fmt::Display,
    {
        let period = period.max(Duration::from_millis(10));
        self.others.push(tokio::spawn(async move {
            let mut ticks = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                ticks.tick().await;
                match task(state.clone()).await {
                    Ok(0) => {}
                    Ok(done) => tracing::info!(done, task = what, "periodic task done"),
                    Err(error) => {
                        tracing::warn!(error.message = %error, task = what, "periodic task failed")
                    }
                }
            }
        }));
    }

    /// Opens the operators' console of this service ([`crate::ops`]),
    /// behind `scope`, over its jobs table: starts keeping its dead letters,
    /// and [`Service::serve`] gives every worker its
    /// [`crate::ops::Console`]. Register the routes with `crate::ops::scope`.
    pub fn console(
        &mut self,
        scope: &'static str,
        jobs_table: &'static str,
        wake_jobs: Arc<tokio::sync::Notify>,
    ) {
        let ops = Arc::new(crate::ops::Ops {
            service: self.name,
            scope,
            jobs_table,
            wake_jobs,
            outbox: self.outbox,
            outbox_signal: self.signal.clone(),
            queue: self.amqp.consume.queue.clone(),
            amqp_url: self.amqp.url.clone(),
        });
        let (keeper, pool) = (ops.clone(), self.pool.clone());
        self.until_stopped(move |stop| crate::ops::dead_letters::keep(keeper, pool, stop));
        self.ops = Some(ops);
    }

    /// Prunes old rows by `rules` (see [`crate::retention`]).
    pub fn prune(
        &mut self,
        rules: Vec<crate::retention::Rule>,
        config: &crate::retention::RetentionConfig,
    ) {
        let task = crate::retention::run(self.pool.clone(), rules, config.clone());
        self.spawn(task);
    }

    /// Starts a loop that is simply stopped on shutdown.
    pub fn spawn(&mut self, task: impl Future<Output = ()> + Send + 'static) {
        self.others.push(tokio::spawn(task));
    }

    /// Binds `http.host:http.port` and serves `routes` (and whatever app
    /// data they register) behind the shared middleware: request metrics,
    /// the traced root span, `/metrics`, `/health`, `/ready`, the API
    /// description at `/openapi.json` and `/docs/`, problem+json for bad
    /// paths, queries and unknown routes.
    pub fn serve<F>(
        self,
        limits: RateLimits,
        openapi: utoipa::openapi::OpenApi,
        routes: F,
    ) -> anyhow::Result<Running>
    where
        F: Fn(&mut web::ServiceConfig, &PgPool) + Clone + Send + 'static,
    {
        let (counted, service, queue) = (
            self.pool.clone(),
            self.name,
            self.amqp.consume.queue.clone(),
        );
        let metrics =
            web::Data::new(
                crate::metrics::Metrics::for_service(self.pool.clone(), self.outbox)
                    .with_collector(move || {
                        let (pool, queue) = (counted.clone(), queue.clone());
                        async move {
                            crate::ops::dead_letters::record_open(&pool, service, &queue).await
                        }
                    }),
            );
        let readiness = web::Data::new(
            Readiness::default()
                .with_link("database", self.database)
                .with_link("broker", self.broker),
        );
        let verifier = web::Data::new(self.verifier);
        let limits = web::Data::new(limits);
        let body_limit = BodyLimit(self.http.body_limit_bytes);
        let body_timeout = crate::json::BodyTimeout(std::time::Duration::from_millis(
            self.http.body_timeout_ms.max(1),
        ));
        let contract = web::Data::new(if self.http.check_contract {
            crate::openapi::ContractCheck::new(&openapi)
        } else {
            crate::openapi::ContractCheck::default()
        });
        let admission = web::Data::new(crate::admission::Admission::new(self.http.max_in_flight));
        let (listener, port) = http::bind(&self.http.host, self.http.port)?;
        // Every HTTP worker is a single-threaded runtime with a pool of its
        // own, built on its thread: its connections' I/O tasks run there, so
        // a request never wakes another thread to reach the database (with
        // one shared pool, half the checkouts did; see BENCHMARKS.md). The
        // workers share `pool_size` between them.
        let workers = match self.http.workers {
            0 => std::thread::available_parallelism().map_or(1, usize::from),
            workers => workers,
        };
        let mut worker_database = self.database_config.clone();
        worker_database.pool_size = self.database_config.pool_size.div_ceil(workers).max(1);
        let shared_pool = self.pool.clone();
        let ops = self.ops;
        let server = HttpServer::new(move || {
            // The settings already built the background pool, so this cannot
            // fail; if it ever did, the worker would share that one.
            let pool = db::build_pool(&worker_database).unwrap_or_else(|_| shared_pool.clone());
            let routes = routes.clone();
            let console = ops
                .as_ref()
                .map(|ops| web::Data::new(ops.console(pool.clone())));
            App::new()
                .wrap(actix_web::middleware::from_fn(crate::rate_limit::headers))
                .wrap(actix_web::middleware::from_fn(
                    crate::card_data::refuse_in_url,
                ))
                .wrap(actix_web::middleware::from_fn(
                    crate::openapi::check_contract,
                ))
                .wrap(actix_web::middleware::from_fn(crate::admission::admit))
                .wrap(actix_web::middleware::from_fn(
                    crate::metrics::track_requests,
                ))
                .wrap(TracingLogger::<http::TracedRootSpan>::new())
                .app_data(metrics.clone())
                .service(crate::metrics::metrics_endpoint)
                .app_data(verifier.clone())
                .app_data(readiness.clone())
                .app_data(limits.clone())
                .app_data(contract.clone())
                .app_data(admission.clone())
                .app_data(body_limit)
                .app_data(body_timeout)
                .configure(http::extractor_config)
                .configure(http::operations)
                .configure(move |config| {
                    if let Some(console) = console {
                        config.app_data(console);
                    }
                    routes(config, &pool)
                })
                .service(SwaggerUi::new("/docs/{_:.*}").url("/openapi.json", openapi.clone()))
                .default_service(web::to(http::route_not_found))
        })
        .shutdown_timeout(self.http.shutdown_timeout_seconds)
        .workers(workers)
        .listen(listener)?;
        tracing::info!(http.port = port, "{} is listening", self.name);
        Ok(Running::new(port, server.run(), self.others).with_graceful(
            self.stop,
            self.graceful,
            Duration::from_secs(self.http.shutdown_timeout_seconds),
        ))
    }
}
