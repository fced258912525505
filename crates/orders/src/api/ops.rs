//! Orders' own routes of the operators' console (the shared ones are
//! [`platform::ops`]'s): an order's story as JSON and as a page, and
//! rebuilding the read model. Every one needs `orders.ops`.

use actix_web::{HttpRequest, HttpResponse, get, http::header, post, web};
use contracts::ops::{OrderStory, StepKind};
use platform::{
    FieldError, Problem,
    auth::Authenticated,
    json::OptionalJson,
    ops::{
        Console,
        audit::{self, Action},
    },
};
use serde::Deserialize;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::console::{self, PaymentsConsole, RebuildReport, StoryError};

/// The scope of the operators' console; no other scope opens it.
pub const OPS: &str = "orders.ops";

impl From<StoryError> for Problem {
    fn from(error: StoryError) -> Self {
        match error {
            StoryError::NotFound => Problem::not_found("no such order"),
            StoryError::Store(error) => Problem::internal(&error.into()),
            StoryError::Database(error) => Problem::internal(&error.into()),
            StoryError::Unexpected(error) => Problem::internal(&error),
        }
    }
}

fn authorization(request: &HttpRequest) -> String {
    request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .unwrap_or_default()
        .to_owned()
}

async fn told(
    principal: &platform::auth::Principal,
    request: &HttpRequest,
    console: &Console,
    payments: &PaymentsConsole,
    id: Uuid,
) -> Result<OrderStory, Problem> {
    console.operator(principal)?;
    Ok(console::story(console, payments, id, &authorization(request)).await?)
}

/// An order's whole story across both services, in time order: its events
/// (who caused each, and its trace id), payments' events, unfinished jobs
/// and dead letters that name it, and its payments as they stand.
#[utoipa::path(
    get, path = "/api/v1/ops/orders/{id}", tag = "ops",
    params(("id" = Uuid, Path, description = "Order id")),
    security(("bearer" = ["orders.ops"])),
    responses(
        (status = 200, description = "The story; `missing` says what could not be told (payments' side needs the token to hold `payments.ops` for audience payments too)", body = OrderStory),
        (status = 403, description = "Not an operator (`forbidden`)", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such order (`not_found`)", body = Problem, content_type = "application/problem+json"),
    )
)]
#[get("/orders/{id}")]
pub async fn order_story(
    Authenticated(principal): Authenticated,
    request: HttpRequest,
    console: web::Data<Console>,
    payments: web::Data<PaymentsConsole>,
    id: web::Path<Uuid>,
) -> Result<HttpResponse, Problem> {
    let story = told(&principal, &request, &console, &payments, id.into_inner()).await?;
    Ok(HttpResponse::Ok().json(story))
}

/// What to rebuild.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RebuildBody {
    /// One order only; otherwise a page of orders in id order.
    #[serde(default)]
    pub order_id: Option<Uuid>,
    /// The page starts after this order id (the last report's `next_after`).
    #[serde(default)]
    pub after: Option<Uuid>,
    /// Orders per page (1–1000, default 200).
    #[serde(default)]
    pub limit: Option<i64>,
    /// Rewrite the rows that differ (default: only report them).
    #[serde(default)]
    pub apply: bool,
}

/// Rebuilds the read model from the event store, online, and reports every
/// difference from what is stored; rewrites the differing orders' rows
/// only with `apply`.
#[utoipa::path(
    post, path = "/api/v1/ops/projections/rebuild", tag = "ops",
    request_body(content = Option<RebuildBody>),
    security(("bearer" = ["orders.ops"])),
    responses(
        (status = 200, description = "What was compared, every difference, and whether it was applied", body = RebuildReport),
        (status = 400, description = "Invalid body (`validation_error`), malformed JSON (`malformed_request`)", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not an operator (`forbidden`)", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "The body is not JSON (`unsupported_media_type`)", body = Problem, content_type = "application/problem+json"),
    )
)]
#[post("/projections/rebuild")]
pub async fn rebuild_projections(
    Authenticated(principal): Authenticated,
    console: web::Data<Console>,
    body: OptionalJson,
) -> Result<HttpResponse, Problem> {
    let operator = console.operator(&principal)?;
    let body: RebuildBody = body.parse_or_default()?;
    let limit = body.limit.unwrap_or(200);
    if !(1..=1000).contains(&limit) {
        return Err(Problem::validation(vec![FieldError::new(
            "limit",
            "must be between 1 and 1000",
        )]));
    }
    let report = console::rebuild(&console, body.order_id, body.after, limit, body.apply).await?;
    if body.apply && report.differing > 0 {
        let mut orders: Vec<Uuid> = report.differences.iter().map(|d| d.order_id).collect();
        orders.dedup();
        audit::record_now(
            &console,
            &Action {
                operator,
                action: "projection.rebuild",
                target: body
                    .order_id
                    .map_or_else(|| "projections".to_owned(), |id| format!("order:{id}")),
                detail: serde_json::json!({
                    "orders": orders,
                    "fields": report.differences.iter().map(|d| &d.field).collect::<Vec<_>>(),
                }),
            },
        )
        .await?;
    }
    Ok(HttpResponse::Ok().json(report))
}

/// An order's story as a page for a person (server-rendered, no script):
/// `GET /ops/orders/{id}`, with the same token as the JSON.
#[get("/ops/orders/{id}")]
pub async fn timeline_page(
    Authenticated(principal): Authenticated,
    request: HttpRequest,
    console: web::Data<Console>,
    payments: web::Data<PaymentsConsole>,
    id: web::Path<Uuid>,
) -> Result<HttpResponse, Problem> {
    let story = told(&principal, &request, &console, &payments, id.into_inner()).await?;
    Ok(HttpResponse::Ok()
        .content_type("text/html; charset=utf-8")
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .insert_header((
            header::CONTENT_SECURITY_POLICY,
            "default-src 'none'; style-src 'unsafe-inline'",
        ))
        .body(render(&story)))
}

/// Escapes text for HTML.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

fn time(at: time::OffsetDateTime) -> String {
    at.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

/// The timeline page of `story`.
pub fn render(story: &OrderStory) -> String {
    let mut steps = String::new();
    for (index, step) in story.steps.iter().enumerate() {
        let kind = match step.kind {
            StepKind::Event => "event",
            StepKind::Job => "job",
            StepKind::DeadLetter => "dead_letter",
        };
        steps.push_str(&format!(
            "<tr class=\"step {kind}\" data-index=\"{index}\" data-service=\"{service}\" data-kind=\"{kind}\" data-name=\"{name}\">\
             <td><time datetime=\"{at}\">{at}</time></td><td>{service}</td><td>{kind}</td>\
             <td class=\"name\">{name}</td><td>{summary}</td><td>{actor}</td><td class=\"trace\">{trace}</td></tr>\n",
            at = escape(&time(step.at)),
            service = escape(&step.service),
            name = escape(&step.name),
            summary = escape(&step.summary),
            actor = escape(step.actor.as_deref().unwrap_or("")),
            trace = escape(step.trace_id.as_deref().unwrap_or("")),
        ));
    }
    let mut payments = String::new();
    for payment in &story.payments {
        payments.push_str(&format!(
            "<tr class=\"payment\"><td>{id}</td><td>{status}</td><td>{amount} {currency}</td>\
             <td>{captured}</td><td>{refunded}</td></tr>\n",
            id = escape(&payment.id.to_string()),
            status = escape(
                &serde_json::to_value(payment.status)
                    .ok()
                    .and_then(|s| s.as_str().map(str::to_owned))
                    .unwrap_or_default()
            ),
            amount = escape(&payment.amount),
            currency = escape(&payment.currency),
            captured = escape(payment.captured_amount.as_deref().unwrap_or("")),
            refunded = escape(payment.refunded_amount.as_deref().unwrap_or("")),
        ));
    }
    let missing: String = story
        .missing
        .iter()
        .map(|why| format!("<p class=\"missing\">Not shown: {}</p>\n", escape(why)))
        .collect();
    format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <title>Order {number}: timeline</title>\
         <style>body{{font:14px system-ui,sans-serif;margin:2em}}table{{border-collapse:collapse;width:100%}}\
         td,th{{border-bottom:1px solid #ddd;padding:4px 8px;text-align:left;vertical-align:top}}\
         tr.dead_letter{{background:#fde8e8}}tr.job{{background:#fff6dd}}.trace{{font-family:monospace;font-size:12px}}\
         .missing{{color:#a00}}</style></head>\n<body>\
         <h1>Order <span id=\"order-number\">{number}</span></h1>\
         <p id=\"summary\">{id} — status <b id=\"status\">{status}</b>, payment <b id=\"payment-status\">{payment_status}</b>, total {total} {currency}</p>\n\
         {missing}\
         <h2>Timeline</h2><table id=\"timeline\"><thead><tr><th>When (UTC)</th><th>Service</th><th>Kind</th><th>What</th><th>Detail</th><th>By</th><th>Trace</th></tr></thead>\
         <tbody>\n{steps}</tbody></table>\n\
         <h2>Payments</h2><table id=\"payments\"><thead><tr><th>Payment</th><th>Status</th><th>Amount</th><th>Captured</th><th>Refunded</th></tr></thead>\
         <tbody>\n{payments}</tbody></table>\n</body></html>\n",
        number = escape(&story.order_number),
        id = escape(&story.order_id.to_string()),
        status = escape(&story.status),
        payment_status = escape(&story.payment_status),
        total = escape(&story.total),
        currency = escape(&story.currency),
    )
}
