//! Start-up: build the application from settings and serve it.
//!
//! `Application::build` binds the listener first, so port 0 works and tests
//! learn the real port before the server runs.

use std::net::TcpListener;

use actix_web::{App, HttpServer, dev::Server, web};
use anyhow::Context;
use platform::{
    auth::JwtVerifier,
    db,
    http::{self, Readiness},
    json::BodyLimit,
};
use tracing_actix_web::TracingLogger;
use utoipa::OpenApi;
use utoipa_swagger_ui::SwaggerUi;

use crate::{api, config::Settings, service::Orders};

pub struct Application {
    port: u16,
    server: Server,
}

impl Application {
    pub async fn build(settings: Settings) -> anyhow::Result<Application> {
        if settings.database.migrate_on_start {
            let applied =
                db::run_migrations(&settings.database.url, "orders", crate::MIGRATIONS).await?;
            tracing::info!(migrations.applied = ?applied, "database schema is up to date");
        }
        let pool = db::build_pool(&settings.database)?;
        let verifier = web::Data::new(JwtVerifier::from_config(&settings.auth)?);
        let orders = web::Data::new(Orders::new(pool.clone()));
        let readiness = web::Data::new(Readiness::default().with_check("database", move || {
            let pool = pool.clone();
            async move { db::ping(&pool).await }
        }));
        let body_limit = BodyLimit(settings.http.body_limit_bytes);
        let openapi = api::ApiDoc::openapi();

        let listener = TcpListener::bind((settings.http.host.as_str(), settings.http.port))
            .with_context(|| format!("binding {}:{}", settings.http.host, settings.http.port))?;
        let port = listener.local_addr()?.port();
        let mut server = HttpServer::new(move || {
            App::new()
                .wrap(TracingLogger::default())
                .app_data(verifier.clone())
                .app_data(orders.clone())
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
        tracing::info!(http.port = port, "orders is listening");
        Ok(Application {
            port,
            server: server.run(),
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// Serves until SIGINT/SIGTERM, then drains in-flight requests.
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        self.server.await
    }
}
