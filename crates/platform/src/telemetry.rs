//! One telemetry set-up for both services: `tracing` for logs and spans,
//! OpenTelemetry for traces.
//!
//! - **Traces**: every span goes to OpenTelemetry (W3C trace context). When
//!   `OTEL_EXPORTER_OTLP_ENDPOINT` is set, spans are exported over OTLP/HTTP
//!   with the batch processor; otherwise trace and span ids are still
//!   generated and propagated, just not exported.
//! - **Logs**: JSON, one object per line (or a compact human format). Lines
//!   inside an HTTP request or a consumed message carry `trace_id`, `span_id`
//!   and `request_id` at the top level, taken from the root span of their scope
//!   (see [`record_trace_ids`]). The `EnvFilter` applies to the log layer only,
//!   so `RUST_LOG=warn` does not starve the traces.
//!
//! The writer is a parameter so tests can keep quiet or capture lines.

use std::{fmt, sync::OnceLock};

use opentelemetry::{
    global,
    propagation::Extractor,
    trace::{TraceContextExt, TracerProvider as _},
};
use opentelemetry_sdk::{propagation::TraceContextPropagator, trace::SdkTracerProvider};
use serde::Deserialize;
use serde_json::{Map, Value};
use tracing::{Event, Span, Subscriber, field::Field};
use tracing_opentelemetry::OpenTelemetrySpanExt;
use tracing_subscriber::{
    EnvFilter, Layer,
    field::Visit,
    fmt::{FmtContext, FormatEvent, FormatFields, FormattedFields, MakeWriter, format::Writer},
    layer::SubscriberExt,
    registry::LookupSpan,
    util::SubscriberInitExt,
};

/// `log:` section of a service's configuration.
#[derive(Debug, Clone, Deserialize)]
pub struct LogConfig {
    /// `json` (one object per line) or `pretty` (for humans).
    pub format: LogFormat,
    /// Default filter when `RUST_LOG` is unset, e.g. `info` or `orders=debug,info`.
    pub level: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Json,
    Pretty,
}

static PROVIDER: OnceLock<SdkTracerProvider> = OnceLock::new();

/// Installs the global subscriber and tracer provider. Safe to call more than
/// once (later calls are no-ops), which integration tests rely on.
pub fn init<W>(service: &'static str, config: &LogConfig, writer: W)
where
    W: for<'a> MakeWriter<'a> + Send + Sync + 'static,
{
    let filter = EnvFilter::try_from_default_env()
        .or_else(|_| EnvFilter::try_new(&config.level))
        .unwrap_or_else(|_| EnvFilter::new("info"));
    let provider = PROVIDER.get_or_init(|| tracer_provider(service));
    // Traces keep INFO and above (request, message and application spans);
    // libraries' debug/trace spans would cost far more than they tell.
    // OTEL_SDK_DISABLED=true (the standard switch) turns tracing off entirely.
    let disabled = std::env::var("OTEL_SDK_DISABLED").is_ok_and(|v| v.eq_ignore_ascii_case("true"));
    let otel = (!disabled).then(|| {
        tracing_opentelemetry::layer()
            .with_tracer(provider.tracer(service))
            .with_filter(tracing_subscriber::filter::LevelFilter::INFO)
    });
    let logs = match config.format {
        LogFormat::Json => tracing_subscriber::fmt::layer()
            .event_format(JsonWithTraceIds { service })
            .fmt_fields(tracing_subscriber::fmt::format::JsonFields::new())
            .with_writer(writer)
            .with_filter(filter)
            .boxed(),
        LogFormat::Pretty => tracing_subscriber::fmt::layer()
            .compact()
            .with_writer(writer)
            .with_filter(filter)
            .boxed(),
    };
    if tracing_subscriber::registry()
        .with(otel)
        .with(logs)
        .try_init()
        .is_ok()
    {
        global::set_text_map_propagator(TraceContextPropagator::new());
        tracing::debug!(service, "telemetry initialised");
    }
}

fn tracer_provider(service: &'static str) -> SdkTracerProvider {
    let resource = opentelemetry_sdk::Resource::builder()
        .with_service_name(service)
        .build();
    let mut builder = SdkTracerProvider::builder().with_resource(resource);
    if std::env::var_os("OTEL_EXPORTER_OTLP_ENDPOINT").is_some() {
        match opentelemetry_otlp::SpanExporter::builder()
            .with_http()
            .build()
        {
            Ok(exporter) => builder = builder.with_batch_exporter(exporter),
            Err(error) => eprintln!("OTLP export disabled: {error}"),
        }
    }
    let provider = builder.build();
    global::set_tracer_provider(provider.clone());
    provider
}

/// Flushes and stops the trace exporter (call before the process exits).
pub fn shutdown() {
    if let Some(provider) = PROVIDER.get() {
        let _ = provider.shutdown();
    }
}

/// Records the OpenTelemetry ids of `span` in its `trace_id` and `span_id`
/// fields (declared `Empty` when the span was created), so every log line in
/// its scope carries them.
pub fn record_trace_ids(span: &Span) {
    let context = span.context();
    let otel = context.span();
    let ids = otel.span_context();
    if ids.is_valid() {
        span.record("trace_id", ids.trace_id().to_string());
        span.record("span_id", ids.span_id().to_string());
    }
}

/// The W3C `traceparent` of `span`, to store with an event or send onwards.
pub fn traceparent(span: &Span) -> Option<String> {
    let context = span.context();
    let otel = context.span();
    let ids = otel.span_context();
    ids.is_valid().then(|| {
        format!(
            "00-{}-{}-{:02x}",
            ids.trace_id(),
            ids.span_id(),
            ids.trace_flags().to_u8()
        )
    })
}

/// Makes `span` a child of the remote span described by `traceparent`.
pub fn continue_trace(span: &Span, traceparent: Option<&str>) {
    let Some(traceparent) = traceparent else {
        return;
    };
    let carrier = SingleHeader(traceparent);
    let parent = global::get_text_map_propagator(|propagator| propagator.extract(&carrier));
    if parent.span().span_context().is_valid() {
        let _ = span.set_parent(parent);
    }
}

/// Makes `span` a child of the trace context in HTTP `headers`.
pub fn continue_trace_from_headers(span: &Span, headers: &actix_web::http::header::HeaderMap) {
    let parent =
        global::get_text_map_propagator(|propagator| propagator.extract(&HttpHeaders(headers)));
    if parent.span().span_context().is_valid() {
        let _ = span.set_parent(parent);
    }
}

struct SingleHeader<'a>(&'a str);

impl Extractor for SingleHeader<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        (key == "traceparent").then_some(self.0)
    }
    fn keys(&self) -> Vec<&str> {
        vec!["traceparent"]
    }
}

struct HttpHeaders<'a>(&'a actix_web::http::header::HeaderMap);

impl Extractor for HttpHeaders<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|value| value.to_str().ok())
    }
    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(|key| key.as_str()).collect()
    }
}

/// JSON lines with the trace ids of their scope at the top level:
/// `{"timestamp", "level", "target", "service", "message", <event fields>,
/// "span", "trace_id", "span_id", "request_id"}`.
struct JsonWithTraceIds {
    service: &'static str,
}

#[derive(Default)]
struct Fields(Map<String, Value>);

impl Visit for Fields {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.insert(field.name().to_owned(), Value::from(value));
    }
    fn record_i64(&mut self, field: &Field, value: i64) {
        self.0.insert(field.name().to_owned(), Value::from(value));
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        self.0.insert(field.name().to_owned(), Value::from(value));
    }
    fn record_f64(&mut self, field: &Field, value: f64) {
        self.0.insert(field.name().to_owned(), Value::from(value));
    }
    fn record_bool(&mut self, field: &Field, value: bool) {
        self.0.insert(field.name().to_owned(), Value::from(value));
    }
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.0
            .insert(field.name().to_owned(), Value::from(format!("{value:?}")));
    }
}

impl<S, N> FormatEvent<S, N> for JsonWithTraceIds
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let mut line = Map::new();
        let now = time::OffsetDateTime::now_utc()
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap_or_default();
        line.insert("timestamp".into(), Value::from(now));
        line.insert(
            "level".into(),
            Value::from(event.metadata().level().as_str()),
        );
        line.insert("target".into(), Value::from(event.metadata().target()));
        line.insert("service".into(), Value::from(self.service));
        let mut fields = Fields::default();
        event.record(&mut fields);
        line.extend(fields.0);
        if let Some(scope) = ctx.event_scope() {
            let mut first = true;
            for span in scope {
                if first {
                    line.insert("span".into(), Value::from(span.name()));
                    first = false;
                }
                let extensions = span.extensions();
                let Some(stored) = extensions.get::<FormattedFields<N>>() else {
                    continue;
                };
                let Ok(Value::Object(span_fields)) = serde_json::from_str::<Value>(stored) else {
                    continue;
                };
                for key in ["trace_id", "span_id", "request_id"] {
                    if !line.contains_key(key)
                        && let Some(value) = span_fields.get(key)
                    {
                        line.insert(key.into(), value.clone());
                    }
                }
            }
        }
        let text = serde_json::to_string(&line).map_err(|_| fmt::Error)?;
        writeln!(writer, "{text}")
    }
}
