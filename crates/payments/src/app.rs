//! Start-up: the payments service assembled from [`platform::service`] and
//! its own parts: the HTTP API, the `order.cancelled` consumer, the job
//! worker (refunds, reconciliations) and its sweeps.

use std::{sync::Arc, time::Duration};

use actix_web::web;
use platform::{
    auth::ServiceCredentials,
    http,
    service::{Common, Service},
};
use utoipa::OpenApi;

use crate::{
    api,
    config::Settings,
    consumer::OrderCancelled,
    orders::OrdersClient,
    provider::{PaymentProvider, SimulatedProvider},
    service::{JobHandler, Payments, ReconcileJob, RefundJob, SYSTEM, VoidJob},
    store::{JOBS, OUTBOX},
};

/// The payments service: [`Application::build`] assembles it and returns it
/// running ([`http::Running`]: its port, and `run_until_stopped`).
pub struct Application;

impl Application {
    pub async fn build(settings: Settings) -> anyhow::Result<http::Running> {
        // The simulated provider keeps its records in the database, through
        // a small pool of its own, as a real provider keeps its own.
        let provider_pool = platform::db::build_pool(&platform::db::DatabaseConfig {
            pool_size: 4,
            ..settings.database.clone()
        })?;
        let provider = Arc::new(SimulatedProvider::durable(
            Duration::from_millis(settings.provider.latency_ms),
            provider_pool,
        ));
        Self::build_with_provider(settings, provider).await
    }

    /// With another payment provider (tests that crash mid-charge).
    pub async fn build_with_provider(
        settings: Settings,
        provider: Arc<dyn PaymentProvider>,
    ) -> anyhow::Result<http::Running> {
        let mut service = Service::start(
            Common {
                name: "payments",
                http: &settings.http,
                database: &settings.database,
                amqp: &settings.amqp,
                relay: &settings.relay,
                auth: &settings.auth,
            },
            crate::MIGRATIONS,
            OUTBOX,
        )
        .await?;
        let credentials = ServiceCredentials::resolve(
            settings.orders.service_token.as_ref(),
            &settings.auth,
            "orders",
            SYSTEM,
            crate::orders::SCOPES,
            "orders.service_token",
        )?;
        let orders = OrdersClient::new(&settings.orders, credentials)?;
        let wake_jobs = Arc::new(tokio::sync::Notify::new());
        let payments = Arc::new(Payments::new(
            service.pool.clone(),
            provider,
            orders,
            settings.provider.retry(),
            settings.idempotency.policy(),
            wake_jobs.clone(),
            service.outbox_signal(),
        ));

        service.console(api::OPS, JOBS, wake_jobs.clone());

        // Refunds and reconciliations.
        let jobs = Arc::new(JobHandler {
            payments: payments.clone(),
        });
        let worker = platform::jobs::Worker::new(
            service.pool.clone(),
            JOBS,
            wake_jobs,
            settings.jobs.clone(),
        )
        .register::<RefundJob, _>(jobs.clone())
        .register::<VoidJob, _>(jobs.clone())
        .register::<ReconcileJob, _>(jobs);
        service.until_stopped(|stop| worker.run(stop));
        service.consume(Arc::new(OrderCancelled {
            payments: payments.clone(),
        }));

        // Sweeps.
        service.prune(retention_rules(&settings.retention), &settings.retention);
        let stale = time::Duration::seconds(settings.reconcile.stale_after_seconds);
        service.every(
            Duration::from_millis(settings.reconcile.scan_every_ms),
            "reconcile payments stuck in processing",
            payments.clone(),
            move |payments| async move { payments.find_stuck(stale).await },
        );
        if settings.authorizations.expire_after_seconds > 0 {
            let expire_after =
                time::Duration::seconds(settings.authorizations.expire_after_seconds);
            service.every(
                Duration::from_millis(settings.authorizations.scan_every_ms.max(100)),
                "void expired authorizations",
                payments.clone(),
                move |payments| async move { payments.expire_authorizations(expire_after).await },
            );
        }
        service.every(
            Duration::from_secs(600),
            "forget expired idempotency keys",
            payments.clone(),
            |payments| async move { payments.sweep_keys().await },
        );

        let running = service.serve(
            settings.rate_limit.limits()?,
            api::ApiDoc::openapi(),
            move |routes, pool| {
                routes
                    .app_data(web::Data::new(payments.on_pool(pool.clone())))
                    .configure(api::configure);
            },
        )?;
        Ok(running)
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
