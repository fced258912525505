//! HTTP plumbing shared by both services: operations endpoints, extractor error
//! handlers that answer problem+json, and the request-id/trace middleware.

use std::{future::Future, sync::Arc};

use actix_web::{
    HttpRequest, HttpResponse, Responder, get,
    http::StatusCode,
    web::{self, ServiceConfig},
};
use serde::Serialize;
use utoipa::ToSchema;

use crate::problem::{FieldError, Problem};

/// The state of one live dependency, kept up to date by whoever holds the
/// connection (the consumer for the broker, a watcher for the database) and
/// read by `/ready`: a probe opens nothing and costs nothing.
#[derive(Debug, Default)]
pub struct Link(std::sync::atomic::AtomicBool);

impl Link {
    pub fn set(&self, up: bool) {
        self.0.store(up, std::sync::atomic::Ordering::Relaxed);
    }

    pub fn is_up(&self) -> bool {
        self.0.load(std::sync::atomic::Ordering::Relaxed)
    }
}

/// The named links behind `/ready`.
#[derive(Clone, Default)]
pub struct Readiness {
    links: Vec<(&'static str, Arc<Link>)>,
}

impl Readiness {
    pub fn with_link(mut self, name: &'static str, link: Arc<Link>) -> Self {
        self.links.push((name, link));
        self
    }
}

/// Keeps `link` up to date with whether `check` succeeds, every `every`
/// (the first check before it returns, so a fresh service knows at once).
pub async fn watch<F, Fut>(link: Arc<Link>, every: std::time::Duration, check: F)
where
    F: Fn() -> Fut + Send + Sync + 'static,
    Fut: Future<Output = anyhow::Result<()>> + Send + 'static,
{
    let probe = move || {
        let outcome = check();
        async move {
            matches!(
                tokio::time::timeout(std::time::Duration::from_secs(2), outcome).await,
                Ok(Ok(()))
            )
        }
    };
    link.set(probe().await);
    tokio::spawn(async move {
        let mut ticks = tokio::time::interval(every);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        ticks.tick().await;
        loop {
            ticks.tick().await;
            let up = probe().await;
            if up != link.is_up() {
                tracing::warn!(up, "a dependency changed state");
            }
            link.set(up);
        }
    });
}

/// Body of `/health` and `/ready`.
#[derive(Debug, Serialize, ToSchema)]
pub struct HealthResponse {
    /// `ok`, or `unavailable` when a check failed.
    pub status: &'static str,
    /// Each dependency and its state (`ok` or `unavailable`; never an
    /// internal error text).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub checks: Vec<CheckResult>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CheckResult {
    pub name: &'static str,
    pub status: String,
}

/// Liveness: the process serves HTTP.
#[utoipa::path(get, path = "/health", tag = "operations",
    responses((status = 200, description = "The process is alive", body = HealthResponse)))]
#[get("/health")]
pub async fn health() -> impl Responder {
    HttpResponse::Ok().json(HealthResponse {
        status: "ok",
        checks: Vec::new(),
    })
}

/// Readiness: every dependency's live connection is up.
#[utoipa::path(get, path = "/ready", tag = "operations",
    responses(
        (status = 200, description = "All dependencies reachable", body = HealthResponse),
        (status = 503, description = "A dependency is unreachable", body = HealthResponse)))]
#[get("/ready")]
pub async fn ready(readiness: web::Data<Readiness>) -> impl Responder {
    let results: Vec<CheckResult> = readiness
        .links
        .iter()
        .map(|(name, link)| CheckResult {
            name,
            status: if link.is_up() { "ok" } else { "unavailable" }.to_owned(),
        })
        .collect();
    let healthy = results.iter().all(|check| check.status == "ok");
    let status = if healthy {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    HttpResponse::build(status).json(HealthResponse {
        status: if healthy { "ok" } else { "unavailable" },
        checks: results,
    })
}

/// Registers `/health` and `/ready`.
pub fn operations(cfg: &mut ServiceConfig) {
    cfg.service(health).service(ready);
}

/// Extractor configuration so malformed paths and queries answer problem+json:
/// an unparsable id in a path is simply not found; a bad query is a 400.
pub fn extractor_config(cfg: &mut ServiceConfig) {
    cfg.app_data(web::PathConfig::default().error_handler(|error, _| {
        Problem::not_found(format!("no such resource ({error})")).into()
    }))
    .app_data(web::QueryConfig::default().error_handler(|error, _| {
        Problem::validation(vec![FieldError::new("query", error.to_string())]).into()
    }));
}

/// Fallback for unknown routes: a problem+json 404 (or 405 for a known path
/// with the wrong method is left to actix's router).
pub async fn route_not_found(req: HttpRequest) -> HttpResponse {
    use actix_web::ResponseError;
    Problem::not_found(format!("no route for {} {}", req.method(), req.path())).error_response()
}

/// The root span of every request: continues the caller's W3C trace context
/// (`traceparent`), and records the trace and span ids and the request id so
/// every log line of the request carries them. (tracing-actix-web's own
/// OpenTelemetry support stops at opentelemetry 0.32; this builder is the
/// few lines it takes with 0.33.)
pub struct TracedRootSpan;

/// The route template a request matched (`/api/v1/orders/{id}`, else
/// `unmatched`), found once per request by the root span and kept in the
/// request's extensions for the metrics middleware: matching runs the
/// router's patterns again, a regex each.
#[derive(Debug, Clone)]
pub struct MatchedRoute(pub String);

impl MatchedRoute {
    /// The request's route template, found now unless it already was.
    pub fn of(request: &actix_web::dev::ServiceRequest) -> String {
        use actix_web::HttpMessage;
        if let Some(found) = request.extensions().get::<MatchedRoute>() {
            return found.0.clone();
        }
        let route = request
            .match_pattern()
            .unwrap_or_else(|| "unmatched".to_owned());
        request.extensions_mut().insert(MatchedRoute(route.clone()));
        route
    }
}

impl tracing_actix_web::RootSpanBuilder for TracedRootSpan {
    fn on_request_start(request: &actix_web::dev::ServiceRequest) -> tracing::Span {
        use actix_web::HttpMessage;
        let route = MatchedRoute::of(request);
        let request_id = request
            .extensions()
            .get::<tracing_actix_web::RequestId>()
            .map(ToString::to_string)
            .unwrap_or_default();
        let span = tracing::info_span!(
            "HTTP request",
            http.method = %request.method(),
            http.route = %route,
            http.status_code = tracing::field::Empty,
            otel.name = %format!("{} {route}", request.method()),
            otel.kind = "server",
            request_id = %request_id,
            trace_id = tracing::field::Empty,
            span_id = tracing::field::Empty,
        );
        crate::telemetry::continue_trace_from_headers(&span, request.headers());
        crate::telemetry::record_trace_ids(&span);
        span
    }

    fn on_request_end<B: actix_web::body::MessageBody>(
        span: tracing::Span,
        outcome: &Result<actix_web::dev::ServiceResponse<B>, actix_web::Error>,
    ) {
        let status = match outcome {
            Ok(response) => response.status(),
            Err(error) => error.as_response_error().status_code(),
        };
        span.record("http.status_code", status.as_u16());
        if status.is_server_error() {
            span.record("otel.status_code", "ERROR");
        }
    }
}

/// A service's HTTP server and its background tasks (relay, consumer, …).
pub struct Running {
    port: u16,
    server: actix_web::dev::Server,
    /// Stopped at once after the server.
    tasks: Vec<tokio::task::JoinHandle<()>>,
    /// Told to stop, then given `grace` to finish what they hold.
    graceful: Vec<tokio::task::JoinHandle<()>>,
    stop: Option<tokio::sync::watch::Sender<bool>>,
    grace: std::time::Duration,
}

/// Tells background loops to finish what they hold and return.
pub type Stop = tokio::sync::watch::Receiver<bool>;

/// A stop signal and its receiver for the background loops.
pub fn stop_signal() -> (tokio::sync::watch::Sender<bool>, Stop) {
    tokio::sync::watch::channel(false)
}

/// Resolves once a stop is requested (at once if it already was).
pub async fn stopped(stop: &mut Stop) {
    // An error means the sender is gone: nobody can ask any more, so stop.
    let _ = stop.wait_for(|stopping| *stopping).await;
}

impl Running {
    pub fn new(
        port: u16,
        server: actix_web::dev::Server,
        tasks: Vec<tokio::task::JoinHandle<()>>,
    ) -> Self {
        Self {
            port,
            server,
            tasks,
            graceful: Vec::new(),
            stop: None,
            grace: std::time::Duration::ZERO,
        }
    }

    /// Loops that finish their work on `stop` (the consumer, the relay, the
    /// job worker), within `grace` after the server has stopped.
    pub fn with_graceful(
        mut self,
        stop: tokio::sync::watch::Sender<bool>,
        graceful: Vec<tokio::task::JoinHandle<()>>,
        grace: std::time::Duration,
    ) -> Self {
        self.stop = Some(stop);
        self.graceful = graceful;
        self.grace = grace;
        self
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// Serves until SIGINT/SIGTERM: stops accepting connections and lets
    /// in-flight requests finish (the server's shutdown timeout), then asks
    /// the graceful loops to finish what they hold (messages being handled,
    /// the relay's batch, running jobs) and waits for them up to `grace`;
    /// whatever is left is aborted.
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        let result = self.server.await;
        tracing::info!("HTTP server stopped; finishing background work");
        for task in self.tasks {
            task.abort();
        }
        if let Some(stop) = self.stop {
            let _ = stop.send(true);
            let aborts: Vec<_> = self.graceful.iter().map(|t| t.abort_handle()).collect();
            let waiting = futures_util::future::join_all(self.graceful);
            if tokio::time::timeout(self.grace, waiting).await.is_err() {
                tracing::warn!(
                    grace_seconds = self.grace.as_secs(),
                    "background work did not finish in time; stopping it"
                );
                aborts.iter().for_each(tokio::task::AbortHandle::abort);
            }
        }
        tracing::info!("stopped");
        result
    }
}

/// Binds `host:port` (port 0 picks a free one) and returns the real port.
pub fn bind(host: &str, port: u16) -> anyhow::Result<(std::net::TcpListener, u16)> {
    use anyhow::Context;
    let listener = std::net::TcpListener::bind((host, port))
        .with_context(|| format!("binding {host}:{port}"))?;
    let port = listener.local_addr()?.port();
    Ok((listener, port))
}
