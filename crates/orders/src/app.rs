//! Start-up: the orders service assembled from [`platform::service`] and its
//! own parts.
//!
//! `Application::build` binds the listener first, so port 0 works and tests
//! learn the real port before the server runs.

use std::{sync::Arc, time::Duration};

use actix_web::web;
use platform::privacy::KeyRing;
use platform::{
    auth::ServiceCredentials,
    http,
    jobs::Worker,
    service::{Common, Service},
};
use tokio::sync::Notify;
use utoipa::OpenApi;

use crate::{
    api,
    catalog::Catalog,
    config::Settings,
    domain::{Promotions, pricing::Pricing},
    messaging::payment_events::PaymentEvents,
    payments_client::PaymentsClient,
    service::{
        Collaborators, Orders, SYSTEM,
        jobs::{self, Jobs},
    },
    store::{JOBS, OUTBOX},
    users::UserDirectory,
};

/// The orders service: [`Application::build`] assembles it and returns it
/// running ([`http::Running`]: its port, and `run_until_stopped`).
pub struct Application;

impl Application {
    pub async fn build(settings: Settings) -> anyhow::Result<http::Running> {
        let mut service = Service::start(
            Common {
                name: "orders",
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
        let users = UserDirectory::from_config(&settings.user_service, &settings.auth)?;
        if users.is_none() {
            tracing::warn!("user validation is off: user_service.url is not set");
        }
        let catalog = Catalog::from_config(&settings.catalog, &settings.auth)?;
        if catalog.is_none() {
            tracing::warn!(
                "no catalogue: client-sent prices are accepted and no stock is reserved"
            );
        }
        // Personal data is sealed with keys this configuration must open.
        let privacy = Arc::new(KeyRing::new(&settings.privacy, settings.auth.production)?);
        match platform::db::connection(&service.pool).await {
            Ok(mut conn) => crate::store::keys::check(&mut conn, &privacy).await?,
            // Served without its database (readiness says so): a wrong key
            // then shows at the first read of sealed data.
            Err(error) => tracing::warn!(
                error.message = %error,
                "could not check privacy.keys against the stored data keys: the database is unreachable"
            ),
        }
        service.every(
            Duration::from_secs(60),
            "rewrap data keys with the active key-encryption key",
            (service.pool.clone(), privacy.clone()),
            |(pool, privacy)| async move {
                let mut conn = platform::db::connection(&pool).await?;
                crate::store::keys::rewrap(&mut conn, &privacy, 500).await
            },
        );
        let wake_jobs = Arc::new(Notify::new());
        service.console(api::ops::OPS, JOBS, wake_jobs.clone());
        let payments_console =
            web::Data::new(crate::console::PaymentsConsole::new(&settings.payments)?);
        let orders = Arc::new(
            Orders::new(
                service.pool.clone(),
                wake_jobs.clone(),
                settings.idempotency.policy(),
                Collaborators {
                    users,
                    catalog,
                    pricing: Pricing::from_config(&settings.pricing).map_err(anyhow::Error::msg)?,
                    promotions: Promotions::from_config(&settings.promotions)
                        .map_err(anyhow::Error::msg)?,
                    privacy: privacy.clone(),
                },
            )
            .with_outbox(service.outbox_signal())
            .with_returns(crate::domain::ReturnPolicy {
                window: time::Duration::days(settings.returns.window_days.max(0)),
            })
            .with_history_limits(
                settings.history.max_events_per_order,
                settings.history.max_page,
            ),
        );

        // Charges, refunds and stock releases.
        let credentials = ServiceCredentials::resolve(
            settings.payments.service_token.as_ref(),
            &settings.auth,
            "payments",
            SYSTEM,
            crate::payments_client::SCOPES,
            "payments.service_token",
        )?;
        let jobs = Arc::new(Jobs::new(
            orders.clone(),
            PaymentsClient::new(&settings.payments, credentials)?,
        ));
        let worker = jobs::register(
            Worker::new(service.pool.clone(), JOBS, wake_jobs, settings.jobs.clone()),
            jobs,
        );
        service.until_stopped(|stop| worker.run(stop));
        service.consume(Arc::new(PaymentEvents {
            orders: orders.clone(),
        }));

        // Sweeps.
        service.every(
            Duration::from_secs(600),
            "forget expired idempotency keys",
            orders.clone(),
            |orders| async move { orders.sweep_keys().await },
        );
        service.prune(retention_rules(&settings.retention), &settings.retention);
        if settings.unpaid.cancel_after_seconds > 0 {
            let unpaid_for = time::Duration::seconds(settings.unpaid.cancel_after_seconds);
            service.every(
                Duration::from_millis(settings.unpaid.sweep_every_ms.max(100)),
                "cancel unpaid orders",
                orders.clone(),
                move |orders| async move { orders.expire_unpaid(unpaid_for).await },
            );
        } else {
            tracing::info!("automatic cancellation of unpaid orders is off");
        }

        let running = service.serve(
            settings.rate_limit.limits()?,
            api::ApiDoc::openapi(),
            move |routes, pool| {
                routes
                    .app_data(web::Data::new(orders.on_pool(pool.clone())))
                    .app_data(payments_console.clone())
                    .configure(api::configure);
            },
        )?;
        Ok(running)
    }
}

/// What `retention` prunes in schema `orders` (its event store is the
/// history and is never pruned).
pub fn retention_rules(
    config: &platform::retention::RetentionConfig,
) -> Vec<platform::retention::Rule> {
    platform::retention::standard_rules("orders", config)
}
