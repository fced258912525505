//! Handlers of `/api/v1/orders`: authenticate, check the scope, convert the
//! body, call the use case, shape the answer. Nothing else.

use actix_web::{
    HttpRequest, HttpResponse, delete, get,
    http::header::{self, HeaderValue},
    patch, post, web,
};
use contracts::order::OrderData;
use platform::{
    FieldError, Problem,
    auth::{Authenticated, Principal},
    json::{ApiJson, RawJson},
};
use uuid::Uuid;

use super::bodies::{
    CancelOrderQuery, CreateOrderBody, HistoryQuery, ListOrdersQuery, OrderEventResponse,
    OrderHistoryResponse, OrderListResponse, UpdateOrderBody,
};
use crate::domain::{Order, OrderId};

use crate::service::{Actor, Orders, Placed};
use crate::view::order_data;
use platform::rate_limit::RateLimits;

use super::rate_limit;

pub const READ: &str = "orders.read";
pub const WRITE: &str = "orders.write";
pub const ADMIN: &str = "orders.admin";
/// Reads any user's orders and changes none (the payments service checks
/// the order it charges with it).
pub const READ_ALL: &str = "orders.read_all";

/// The caller, with the trace context of this request's span (recorded with
/// the events the request causes).
pub(super) fn actor(principal: &Principal) -> Actor {
    Actor::of(principal, &[ADMIN])
}

/// The caller of a read: `orders.read_all` sees every order, as an admin.
fn reader(principal: &Principal) -> Actor {
    Actor::of(principal, &[ADMIN, READ_ALL])
}

/// `If-Match: "3"` → `Some(3)`; absent or `*` → `None`.
pub(super) fn expected_version(request: &HttpRequest) -> Result<Option<u32>, Problem> {
    let Some(value) = request.headers().get(header::IF_MATCH) else {
        return Ok(None);
    };
    let value = value.to_str().unwrap_or_default().trim();
    if value == "*" {
        return Ok(None);
    }
    value
        .trim_start_matches("W/")
        .trim_matches('"')
        .parse::<u32>()
        .map(Some)
        .map_err(|_| {
            Problem::validation(vec![FieldError::new(
                "header.If-Match",
                "must be an order version as given in ETag, e.g. \"3\"",
            )])
        })
}

pub(super) fn etag(order: &Order) -> (header::HeaderName, HeaderValue) {
    version_tag(order.version)
}

fn version_tag(version: u32) -> (header::HeaderName, HeaderValue) {
    let value = HeaderValue::from_str(&format!("\"{version}\""))
        .unwrap_or_else(|_| HeaderValue::from_static("\"0\""));
    (header::ETAG, value)
}

pub(super) fn order_response(order: &Order) -> HttpResponse {
    HttpResponse::Ok()
        .insert_header(etag(order))
        .json(order_data(order))
}

/// Place an order.
///
/// `user_id` comes from the token (an admin may name another user). The server
/// computes every subtotal and total. Emits `order.created`. Honours
/// `Idempotency-Key` (scoped to the caller): the same key and body replay the
/// first answer byte for byte (`Idempotent-Replayed: true`); another body is a
/// `422`.
#[utoipa::path(
    post, path = "/api/v1/orders", tag = "orders",
    request_body = CreateOrderBody,
    params(("Idempotency-Key" = Option<String>, Header, description = "Makes retries safe; scoped to the caller")),
    security(("bearer" = ["orders.write"])),
    responses(
        (status = 201, description = "Order placed", body = OrderData,
            headers(("Location" = String, description = "URL of the new order"),
                    ("ETag" = String, description = "The order's version"))),
        (status = 400, description = "Invalid order (`validation_error`), an unknown product (`product_not_found`), user (`user_not_found`) or coupon (`invalid_coupon`)", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Missing scope, or another user's order without admin scope (`forbidden`)", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Not enough stock for every line, nothing reserved (`insufficient_stock`, with `items`); or a request with this Idempotency-Key is still in flight (`idempotency_in_flight`)", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Too many orders from this user; see Retry-After (`rate_limited`)", body = Problem, content_type = "application/problem+json",
            headers(("Retry-After" = u64, description = "Seconds to wait"))),
        (status = 503, description = "The User Service or the Catalog Service did not answer; nothing was written (`dependency_unavailable`, with Retry-After)", body = Problem, content_type = "application/problem+json"),
    )
)]
#[post("/orders")]
pub async fn create_order(
    Authenticated(principal): Authenticated,
    request: HttpRequest,
    orders: web::Data<Orders>,
    limits: web::Data<RateLimits>,
    body: RawJson,
) -> Result<HttpResponse, Problem> {
    principal.require(WRITE, &[ADMIN])?;
    limits.check(rate_limit::CREATE, &principal.subject)?;
    let actor = actor(&principal);
    let key = platform::idempotency::from_raw(&request, &body)?;
    // Parsed from the text itself: a JSON number's digits are read exactly.
    let draft = body
        .parse::<CreateOrderBody>()?
        .into_draft(&actor, orders.has_catalog(), orders.default_currency())
        .map_err(Problem::validation)?;
    Ok(stored_response(orders.place(&actor, draft, key).await?))
}

/// List orders, newest first.
///
/// A user sees their own orders; an admin (or `orders.read_all`) sees
/// everyone's and may filter by `user_id`.
#[utoipa::path(
    get, path = "/api/v1/orders", tag = "orders",
    params(ListOrdersQuery),
    security(("bearer" = ["orders.read"])),
    responses(
        (status = 200, description = "A page of orders", body = OrderListResponse),
        (status = 400, description = "Invalid query (`validation_error`)", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Missing scope, or another user's orders (`forbidden`)", body = Problem, content_type = "application/problem+json"),
    )
)]
#[get("/orders")]
pub async fn list_orders(
    Authenticated(principal): Authenticated,
    orders: web::Data<Orders>,
    query: web::Query<ListOrdersQuery>,
) -> Result<HttpResponse, Problem> {
    principal.require(READ, &[ADMIN])?;
    let filter = query
        .into_inner()
        .into_filter()
        .map_err(Problem::validation)?;
    let (limit, offset) = (filter.limit, filter.offset);
    let page = orders.list(&reader(&principal), filter).await?;
    // The stored views are sent as they were written, never parsed.
    let mut tail = serde_json::json!({
        "total": page.total,
        "total_capped": page.total_capped,
        "limit": limit,
        "offset": offset,
        "has_more": page.next.is_some(),
    });
    if let Some(next) = page.next {
        tail["next_cursor"] = super::cursor::encode(next).into();
    }
    let mut body = String::with_capacity(page.orders.iter().map(String::len).sum::<usize>() + 200);
    body.push_str("{\"data\":[");
    body.push_str(&page.orders.join(","));
    body.push_str("],");
    // `tail` is an object: its text after the opening brace.
    body.push_str(tail.to_string().get(1..).unwrap_or("}"));
    Ok(HttpResponse::Ok()
        .content_type(header::ContentType::json())
        .body(body))
}

/// Get an order by id or by order number.
#[utoipa::path(
    get, path = "/api/v1/orders/{id}", tag = "orders",
    params(("id" = String, Path, description = "Order id (UUID) or order number (ORD-XXXX-XXXX)")),
    security(("bearer" = ["orders.read"])),
    responses(
        (status = 200, description = "The order", body = OrderData,
            headers(("ETag" = String, description = "The order's version, for If-Match"))),
        (status = 404, description = "No such order, or not yours (`not_found`)", body = Problem, content_type = "application/problem+json"),
    )
)]
#[get("/orders/{id}")]
pub async fn find_order(
    Authenticated(principal): Authenticated,
    orders: web::Data<Orders>,
    id: web::Path<String>,
) -> Result<HttpResponse, Problem> {
    principal.require(READ, &[ADMIN])?;
    let view = orders.view(&reader(&principal), &id).await?;
    Ok(HttpResponse::Ok()
        .insert_header(version_tag(view.version))
        .content_type(header::ContentType::json())
        .body(view.json))
}

/// Change an order's status.
///
/// `pending → paid → shipped → delivered`, or `cancelled` from `pending`, `paid`
/// or `shipped`. `paid`, `shipped` and `delivered` need `orders.admin`; the owner
/// may cancel. Asking for the current status again changes nothing. With
/// `If-Match: "<version>"` the change applies only to that version.
#[utoipa::path(
    patch, path = "/api/v1/orders/{id}", tag = "orders",
    params(("id" = Uuid, Path, description = "Order id"),
           ("If-Match" = Option<String>, Header, description = "Apply only if the order is at this version (its ETag)")),
    request_body = UpdateOrderBody,
    security(("bearer" = ["orders.write"])),
    responses(
        (status = 200, description = "The updated order", body = OrderData),
        (status = 202, description = "Shipping an order whose payment is only authorized (manual capture): the capture is under way and the order becomes shipped when it succeeds (order.capture_requested in its history; order.capture_failed if declined)", body = OrderData),
        (status = 400, description = "Not a transition the order can make (`invalid_transition`) or an invalid body (`validation_error`)", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Missing scope or an admin-only transition (`forbidden`)", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such order, or not yours (`not_found`)", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Concurrent changes kept winning, retry (`conflict`); shipping an order whose payment was refunded in full (`payment_refunded`) or whose authorization was voided (`payment_voided`); shipping again with another carrier or tracking number (`shipment_recorded`); an order whose history is full (`order_history_full`)", body = Problem, content_type = "application/problem+json"),
        (status = 412, description = "The order is not at the If-Match version (`precondition_failed`, with `current_version`)", body = Problem, content_type = "application/problem+json"),
    )
)]
#[patch("/orders/{id}")]
pub async fn update_order(
    Authenticated(principal): Authenticated,
    request: HttpRequest,
    orders: web::Data<Orders>,
    limits: web::Data<RateLimits>,
    id: web::Path<Uuid>,
    ApiJson(body): ApiJson<UpdateOrderBody>,
) -> Result<HttpResponse, Problem> {
    principal.require(WRITE, &[ADMIN])?;
    limits.check(rate_limit::CHANGE, &principal.subject)?;
    let expected = expected_version(&request)?;
    let reason = body
        .reason
        .as_deref()
        .map(|reason| crate::domain::values::text(reason, 500))
        .transpose()
        .map_err(|message| Problem::validation(vec![FieldError::new("reason", message)]))?;
    let shipment = body.shipment().map_err(Problem::validation)?;
    let order = orders
        .change_status(
            &actor(&principal),
            OrderId(*id),
            &body.status,
            reason,
            shipment,
            expected,
        )
        .await?;
    if order.ledger.capture_pending.is_some() {
        // Manual capture: the order ships once its payment is captured.
        let mut response = order_response(&order);
        *response.status_mut() = actix_web::http::StatusCode::ACCEPTED;
        return Ok(response);
    }
    Ok(order_response(&order))
}

/// Cancel an order (from `pending`, `paid` or `shipped`). Emits `order.cancelled`
/// and answers with the cancelled order; cancelling again changes nothing.
#[utoipa::path(
    delete, path = "/api/v1/orders/{id}", tag = "orders",
    params(("id" = Uuid, Path, description = "Order id"), CancelOrderQuery,
           ("If-Match" = Option<String>, Header, description = "Apply only if the order is at this version")),
    security(("bearer" = ["orders.write"])),
    responses(
        (status = 200, description = "The cancelled order", body = OrderData),
        (status = 400, description = "The order can no longer be cancelled (`invalid_transition`)", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Concurrent changes kept winning, retry (`conflict`); an order whose history is full (`order_history_full`)", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such order, or not yours (`not_found`)", body = Problem, content_type = "application/problem+json"),
        (status = 412, description = "The order is not at the If-Match version (`precondition_failed`, with `current_version`)", body = Problem, content_type = "application/problem+json"),
    )
)]
#[delete("/orders/{id}")]
pub async fn cancel_order(
    Authenticated(principal): Authenticated,
    request: HttpRequest,
    orders: web::Data<Orders>,
    limits: web::Data<RateLimits>,
    id: web::Path<Uuid>,
    query: web::Query<CancelOrderQuery>,
) -> Result<HttpResponse, Problem> {
    principal.require(WRITE, &[ADMIN])?;
    limits.check(rate_limit::CHANGE, &principal.subject)?;
    let expected = expected_version(&request)?;
    let reason = query
        .into_inner()
        .reason
        .as_deref()
        .map(|reason| crate::domain::values::text(reason, 500))
        .transpose()
        .map_err(|message| Problem::validation(vec![FieldError::new("query.reason", message)]))?;
    let order = orders
        .change_status(
            &actor(&principal),
            OrderId(*id),
            "cancelled",
            reason,
            Default::default(),
            expected,
        )
        .await?;
    Ok(order_response(&order))
}

/// An order's full history (the audit trail), oldest first.
#[utoipa::path(
    get, path = "/api/v1/orders/{id}/events", tag = "orders",
    params(("id" = Uuid, Path, description = "Order id"), HistoryQuery),
    security(("bearer" = ["orders.read"])),
    responses(
        (status = 200, description = "A page of the order's events, oldest first", body = OrderHistoryResponse),
        (status = 400, description = "Invalid query: limit, after (`validation_error`)", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such order, or not yours (`not_found`)", body = Problem, content_type = "application/problem+json"),
    )
)]
#[get("/orders/{id}/events")]
pub async fn list_order_events(
    Authenticated(principal): Authenticated,
    orders: web::Data<Orders>,
    id: web::Path<Uuid>,
    query: web::Query<HistoryQuery>,
) -> Result<HttpResponse, Problem> {
    principal.require(READ, &[ADMIN])?;
    let id = OrderId(*id);
    let max = orders.max_history_page();
    let limit = match query.limit {
        None => 100.min(max),
        Some(limit) if (1..=max).contains(&limit) => limit,
        Some(_) => {
            return Err(Problem::validation(vec![FieldError::new(
                "query.limit",
                format!("must be between 1 and {max}"),
            )]));
        }
    };
    let entries = orders
        .history(&reader(&principal), id, query.after.unwrap_or(0), limit)
        .await?;
    let next_after = (entries.len() == limit as usize)
        .then(|| entries.last().map(|entry| entry.sequence))
        .flatten();
    Ok(HttpResponse::Ok().json(OrderHistoryResponse {
        order_id: id.0,
        data: entries.into_iter().map(OrderEventResponse::from).collect(),
        next_after,
    }))
}

/// An answer stored under an Idempotency-Key: `Location` and `ETag` come from
/// the body itself, so a replay answers exactly what the first request did.
pub(super) fn stored_response(placed: Placed) -> HttpResponse {
    let Placed {
        body,
        replayed,
        order,
    } = placed;
    // A fresh answer knows its order; only a replay reads the stored body.
    let order = order
        .map(|(id, version)| (id.to_string(), u64::from(version)))
        .or_else(|| {
            let stored: serde_json::Value = serde_json::from_slice(&body).ok()?;
            Some((
                stored["id"].as_str()?.to_owned(),
                stored["version"].as_u64()?,
            ))
        });
    let mut response = HttpResponse::Created();
    response.content_type("application/json");
    if let Some((id, version)) = order {
        response.insert_header((header::LOCATION, format!("/api/v1/orders/{id}")));
        response.insert_header((header::ETAG, format!("\"{version}\"")));
    }
    if replayed {
        response.insert_header((platform::idempotency::REPLAYED_HEADER, "true"));
    }
    response.body(body)
}
