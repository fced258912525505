//! The HTTP API: routes, request/response bodies and the OpenAPI document.

pub mod bodies;
mod convert;
mod cursor;
mod error;
pub mod items;
pub mod ops;
pub mod orders;
pub mod privacy;
pub mod rate_limit;
pub mod returns;

use actix_web::web::{self, ServiceConfig};
use platform::openapi::StandardResponses;
use utoipa::OpenApi;

/// Registers every route of the orders API under `/api/v1` (each write
/// checks its own rate-limit class, `rate_limit`).
pub fn configure(cfg: &mut ServiceConfig) {
    cfg.service(platform::ops::scope(|scope| {
        scope
            .service(ops::order_story)
            .service(ops::rebuild_projections)
    }))
    .service(ops::timeline_page)
    .service(
        web::scope("/api/v1")
            .service(orders::create_order)
            .service(orders::list_orders)
            .service(orders::list_order_events)
            .service(items::add_order_item)
            .service(items::change_order_item)
            .service(items::remove_order_item)
            .service(returns::request_return)
            .service(returns::receive_return)
            .service(orders::find_order)
            .service(orders::update_order)
            .service(orders::cancel_order)
            .service(privacy::erase_personal_data),
    );
}

/// The OpenAPI description of the orders service (served at `/openapi.json`).
#[derive(OpenApi)]
#[openapi(
    info(
        title = "Orders API",
        description = "Create and track orders through pending → paid → shipped → delivered (or cancelled). \
            Every error is application/problem+json (RFC 9457). Money is a decimal string with an ISO 4217 currency.",
        license(name = "Apache-2.0"),
    ),
    paths(
        orders::create_order,
        orders::list_orders,
        orders::find_order,
        orders::update_order,
        orders::cancel_order,
        orders::list_order_events,
        returns::request_return,
        returns::receive_return,
        items::add_order_item,
        items::change_order_item,
        items::remove_order_item,
        privacy::erase_personal_data,
        platform::http::health,
        platform::metrics::metrics_endpoint,
        platform::http::ready,
        ops::order_story,
        ops::rebuild_projections,
        platform::ops::dead_letters::list_dead_letters,
        platform::ops::dead_letters::find_dead_letter,
        platform::ops::dead_letters::redrive_dead_letter,
        platform::ops::dead_letters::discard_dead_letter,
        platform::ops::jobs::list_jobs,
        platform::ops::jobs::find_job,
        platform::ops::jobs::retry_job,
        platform::ops::jobs::discard_job,
        platform::ops::outbox::outbox_status,
        platform::ops::outbox::republish_outbox,
        platform::ops::audit::list_audit,
    ),
    components(schemas(platform::Problem, platform::FieldError, contracts::order::OrderData, crate::service::Erasure)),
    modifiers(&StandardResponses),
    tags(
        (name = "orders", description = "Orders and their history"),
        (name = "operations", description = "Liveness and readiness"),
        (name = "privacy", description = "Erasing a user's personal data on request; needs the `orders.privacy` scope (no other scope opens it)."),
        (name = "ops", description = "The operators' console: dead letters, jobs, the outbox, the audit trail, an order's story and projection rebuilds. Every operation needs the `orders.ops` scope (no other scope opens it); every change is audited. The story is also a page for people at `/ops/orders/{id}`."),
    )
)]
pub struct ApiDoc;
