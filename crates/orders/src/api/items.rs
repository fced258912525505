//! Handlers of `/api/v1/orders/{id}/items`: a pending order's lines.

use actix_web::{HttpRequest, HttpResponse, delete, http::header, patch, post, web};
use contracts::order::OrderData;
use platform::{
    FieldError, Problem,
    auth::Authenticated,
    json::{ApiJson, RawJson},
    rate_limit::RateLimits,
};
use uuid::Uuid;

use super::bodies::{CreateItemBody, ItemInput, UpdateItemBody};
use super::orders::{ADMIN, WRITE, actor, etag, expected_version, order_response, stored_response};
use super::rate_limit;
use crate::domain::{OrderCommand, OrderId, Quantity, Violation};
use crate::service::{ItemsChanged, OrderError, Orders};
use crate::view::order_data;

fn invalid(errors: Vec<FieldError>) -> OrderError {
    OrderError::Invalid(
        errors
            .into_iter()
            .map(|error| Violation::new(error.field, error.message))
            .collect(),
    )
}

/// Add a line to a pending order (the owner or an admin).
///
/// The price is in the order's currency; totals are recomputed on the terms
/// the order was placed with. Emits `order.item_added`. Items are frozen once
/// the order is paid (`409 items_frozen`).
#[utoipa::path(
    post, path = "/api/v1/orders/{id}/items", tag = "orders",
    params(("id" = Uuid, Path, description = "Order id"),
           ("If-Match" = Option<String>, Header, description = "Apply only if the order is at this version"),
           ("Idempotency-Key" = Option<String>, Header, description = "Makes retries safe; scoped to the caller")),
    request_body = CreateItemBody,
    security(("bearer" = ["orders.write"])),
    responses(
        (status = 201, description = "The order with the new line (a replay with the same Idempotency-Key answers the first response)", body = OrderData),
        (status = 400, description = "Invalid line (`validation_error`) or an unknown product (`product_not_found`)", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "The Catalog Service did not answer; nothing was written (`dependency_unavailable`)", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such order, or not yours (`not_found`)", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The order is no longer pending (`items_frozen`); not enough stock (`insufficient_stock`); its history is full (`order_history_full`); concurrent changes kept winning, retry (`conflict`); a request with this Idempotency-Key is in flight (`idempotency_in_flight`)", body = Problem, content_type = "application/problem+json"),
        (status = 412, description = "The order is not at the If-Match version (`precondition_failed`, with `current_version`)", body = Problem, content_type = "application/problem+json"),
    )
)]
#[post("/orders/{id}/items")]
pub async fn add_order_item(
    Authenticated(principal): Authenticated,
    request: HttpRequest,
    orders: web::Data<Orders>,
    limits: web::Data<RateLimits>,
    id: web::Path<Uuid>,
    body: RawJson,
) -> Result<HttpResponse, Problem> {
    principal.require(WRITE, &[ADMIN])?;
    limits.check(rate_limit::ITEMS, &principal.subject)?;
    let expected = expected_version(&request)?;
    let key = platform::idempotency::from_raw(&request, &body)?;
    let body = body.parse::<ItemInput>()?.0;
    let catalog = orders.has_catalog();
    let order = orders
        .change_items(&actor(&principal), OrderId(*id), expected, key, |order| {
            let item = body.to_item(order.currency, catalog).map_err(invalid)?;
            Ok(OrderCommand::AddItem { item })
        })
        .await?;
    Ok(match order {
        ItemsChanged::Changed(order) => HttpResponse::Created()
            .insert_header((header::LOCATION, format!("/api/v1/orders/{}", order.id)))
            .insert_header(etag(&order))
            .json(order_data(&order)),
        ItemsChanged::Replayed(placed) => stored_response(placed),
    })
}

/// The order of an edit that did not use an Idempotency-Key.
fn changed(outcome: ItemsChanged) -> HttpResponse {
    match outcome {
        ItemsChanged::Changed(order) => order_response(&order),
        ItemsChanged::Replayed(placed) => stored_response(placed),
    }
}

/// Change a line's quantity on a pending order. Emits `order.item_changed`.
#[utoipa::path(
    patch, path = "/api/v1/orders/{id}/items/{item_id}", tag = "orders",
    params(("id" = Uuid, Path, description = "Order id"), ("item_id" = Uuid, Path, description = "Line id"),
           ("If-Match" = Option<String>, Header, description = "Apply only if the order is at this version")),
    request_body = UpdateItemBody,
    security(("bearer" = ["orders.write"])),
    responses(
        (status = 200, description = "The updated order", body = OrderData),
        (status = 404, description = "No such order or line (`not_found`)", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The order is no longer pending (`items_frozen`); not enough stock (`insufficient_stock`); its history is full (`order_history_full`); concurrent changes kept winning, retry (`conflict`); a request with this Idempotency-Key is in flight (`idempotency_in_flight`)", body = Problem, content_type = "application/problem+json"),
        (status = 412, description = "The order is not at the If-Match version (`precondition_failed`, with `current_version`)", body = Problem, content_type = "application/problem+json"),
    )
)]
#[patch("/orders/{id}/items/{item_id}")]
pub async fn change_order_item(
    Authenticated(principal): Authenticated,
    request: HttpRequest,
    orders: web::Data<Orders>,
    limits: web::Data<RateLimits>,
    path: web::Path<(Uuid, Uuid)>,
    ApiJson(body): ApiJson<UpdateItemBody>,
) -> Result<HttpResponse, Problem> {
    principal.require(WRITE, &[ADMIN])?;
    limits.check(rate_limit::ITEMS, &principal.subject)?;
    let expected = expected_version(&request)?;
    let (id, item_id) = path.into_inner();
    let quantity = Quantity::parse(body.quantity)
        .map_err(|message| Problem::validation(vec![FieldError::new("quantity", message)]))?;
    let order = orders
        .change_items(&actor(&principal), OrderId(id), expected, None, |_| {
            Ok(OrderCommand::ChangeItem { item_id, quantity })
        })
        .await?;
    Ok(changed(order))
}

/// Remove a line from a pending order (not the last one: cancel the order
/// instead). Emits `order.item_removed`.
#[utoipa::path(
    delete, path = "/api/v1/orders/{id}/items/{item_id}", tag = "orders",
    params(("id" = Uuid, Path, description = "Order id"), ("item_id" = Uuid, Path, description = "Line id"),
           ("If-Match" = Option<String>, Header, description = "Apply only if the order is at this version")),
    security(("bearer" = ["orders.write"])),
    responses(
        (status = 200, description = "The updated order", body = OrderData),
        (status = 400, description = "It is the last line (`validation_error`)", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such order or line (`not_found`)", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The order is no longer pending (`items_frozen`); not enough stock (`insufficient_stock`); its history is full (`order_history_full`); concurrent changes kept winning, retry (`conflict`); a request with this Idempotency-Key is in flight (`idempotency_in_flight`)", body = Problem, content_type = "application/problem+json"),
        (status = 412, description = "The order is not at the If-Match version (`precondition_failed`, with `current_version`)", body = Problem, content_type = "application/problem+json"),
    )
)]
#[delete("/orders/{id}/items/{item_id}")]
pub async fn remove_order_item(
    Authenticated(principal): Authenticated,
    request: HttpRequest,
    orders: web::Data<Orders>,
    limits: web::Data<RateLimits>,
    path: web::Path<(Uuid, Uuid)>,
) -> Result<HttpResponse, Problem> {
    principal.require(WRITE, &[ADMIN])?;
    limits.check(rate_limit::ITEMS, &principal.subject)?;
    let expected = expected_version(&request)?;
    let (id, item_id) = path.into_inner();
    let order = orders
        .change_items(&actor(&principal), OrderId(id), expected, None, |_| {
            Ok(OrderCommand::RemoveItem { item_id })
        })
        .await?;
    Ok(changed(order))
}
