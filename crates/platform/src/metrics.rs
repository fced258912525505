//! Prometheus metrics: one process-wide recorder, an HTTP middleware, gauges
//! collected at scrape time, and `GET /metrics` (Prometheus text format).
//!
//! Metric names (stable; `docs/observability.md` lists them all):
//! - `http_requests_total{route,method,status}` and
//!   `http_request_duration_seconds{route,method}` (histogram);
//! - `db_pool_connections{state="in_use"|"idle"}`, `db_pool_max_connections`;
//! - `outbox_backlog_events`, `outbox_oldest_unpublished_age_seconds`,
//!   `outbox_published_events_total`;
//! - `messages_consumed_total{queue,outcome="done"|"retried"|"dead_lettered"}`;
//! - each service's own (`orders_created_total`, `payments_total`, …).

use std::{future::Future, pin::Pin, sync::Arc, sync::OnceLock, time::Instant};

use actix_web::{
    Error, HttpResponse, Responder,
    body::MessageBody,
    dev::{ServiceRequest, ServiceResponse},
    get,
    middleware::Next,
    web,
};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

use crate::db::PgPool;

const LATENCY_BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
];

static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();

/// Installs the process-wide recorder (once; later calls return the same handle).
pub fn install() -> PrometheusHandle {
    HANDLE
        .get_or_init(|| {
            let builder = PrometheusBuilder::new()
                .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), LATENCY_BUCKETS)
                .and_then(|builder| {
                    builder.set_buckets_for_metric(
                        Matcher::Full("order_value".into()),
                        &[
                            5.0, 10.0, 25.0, 50.0, 100.0, 250.0, 500.0, 1000.0, 2500.0, 10000.0,
                        ],
                    )
                });
            match builder.and_then(PrometheusBuilder::install_recorder) {
                Ok(handle) => handle,
                // Another recorder is installed (not ours): render what we can.
                Err(error) => {
                    tracing::warn!(error.message = %error, "metrics recorder not installed");
                    PrometheusBuilder::new().build_recorder().handle()
                }
            }
        })
        .clone()
}

/// A gauge refreshed when `/metrics` is scraped.
pub type Collector = Arc<dyn Fn() -> Pin<Box<dyn Future<Output = ()> + Send>> + Send + Sync>;

/// What `/metrics` renders: the recorder plus scrape-time collectors.
#[derive(Clone)]
pub struct Metrics {
    handle: PrometheusHandle,
    collectors: Vec<Collector>,
}

impl Metrics {
    pub fn new() -> Self {
        Self {
            handle: install(),
            collectors: Vec::new(),
        }
    }

    pub fn with_collector<F, Fut>(mut self, collect: F) -> Self
    where
        F: Fn() -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        self.collectors
            .push(Arc::new(move || Box::pin(collect()) as Pin<Box<_>>));
        self
    }

    /// Pool gauges of `pool`.
    pub fn with_pool(self, pool: PgPool) -> Self {
        self.with_collector(move || {
            let status = pool.status();
            async move {
                let in_use = status.size.saturating_sub(status.available);
                metrics::gauge!("db_pool_connections", "state" => "in_use").set(in_use as f64);
                metrics::gauge!("db_pool_connections", "state" => "idle")
                    .set(status.available as f64);
                metrics::gauge!("db_pool_max_connections").set(status.max_size as f64);
            }
        })
    }

    /// Pool gauges plus the outbox backlog of `source`: what both services
    /// expose.
    pub fn for_service(pool: PgPool, source: crate::relay::OutboxSource) -> Self {
        Self::new().with_pool(pool.clone()).with_collector(move || {
            let (pool, source) = (pool.clone(), source);
            async move { crate::relay::record_backlog(&pool, &source).await }
        })
    }

    pub async fn render(&self) -> String {
        futures_util::future::join_all(self.collectors.iter().map(|collect| collect())).await;
        self.handle.render()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

/// Prometheus text exposition of every metric.
#[utoipa::path(get, path = "/metrics", tag = "operations",
    responses((status = 200, description = "Prometheus text format", body = String, content_type = "text/plain")))]
#[get("/metrics")]
pub async fn metrics_endpoint(metrics: web::Data<Metrics>) -> impl Responder {
    HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4")
        .body(metrics.render().await)
}

/// Records every request's count and latency by route template (never the raw
/// path, so ids do not explode the label set), method and status. Every label
/// comes from a closed set: the app's own route patterns (else `unmatched`),
/// the standard methods (else `other`), real status codes; so no client can
/// grow the number of series.
pub async fn track_requests(
    request: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, Error> {
    let started = Instant::now();
    let route = crate::http::MatchedRoute::of(&request);
    let method = method_label(request.method());
    let response = next.call(request).await;
    let status = match &response {
        Ok(response) => response.status().as_u16(),
        Err(error) => error.as_response_error().status_code().as_u16(),
    };
    metrics::counter!(
        "http_requests_total",
        "route" => route.clone(),
        "method" => method,
        "status" => status.to_string()
    )
    .increment(1);
    metrics::histogram!("http_request_duration_seconds", "route" => route, "method" => method)
        .record(started.elapsed().as_secs_f64());
    response
}

/// A method's label: one of the standard methods, else `other`.
fn method_label(method: &actix_web::http::Method) -> &'static str {
    use actix_web::http::Method;
    match *method {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::PATCH => "PATCH",
        Method::DELETE => "DELETE",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        _ => "other",
    }
}
