//! The payments HTTP API: payments (charge, capture, void, read) in
//! [`payments`], refunds in [`refunds`], and the one mapping of the
//! service's errors to problems in [`problems`].

mod payments;
mod problems;
mod refunds;

use actix_web::web;
use contracts::payment::{
    CaptureBody, CaptureMethod, CreateRefundBody, PaymentData, RefundBody, RefundData,
};
use platform::openapi::StandardResponses;
use platform::{FieldError, Problem, auth::Principal};
use utoipa::OpenApi;

use crate::service::Actor;
use payments::*;
pub use payments::{ListPaymentsQuery, PaymentListResponse};
pub use refunds::RefundListResponse;
use refunds::*;

pub const READ: &str = "payments.read";
pub const WRITE: &str = "payments.write";
pub const ADMIN: &str = "payments.admin";
/// The operators' console (`/api/v1/ops`); no other scope opens it.
pub const OPS: &str = "payments.ops";

/// Rate-limit classes: charging, refunding.
pub const CREATE_LIMIT: &str = "payments.create";
pub const REFUND_LIMIT: &str = "payments.refund";

/// The caller, with the trace context of this request's span.
pub(super) fn actor(principal: &Principal) -> Actor {
    Actor::of(principal, &[ADMIN])
}

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(platform::ops::scope(|ops| {
        ops.service(crate::ops::order_story)
    }))
    .service(
        web::scope("/api/v1")
            .service(create_payment)
            .service(refund_payment)
            .service(create_refund)
            .service(capture_payment)
            .service(void_payment)
            .service(list_refunds)
            .service(list_payments)
            .service(find_payment),
    );
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Payments API",
        description = "Charge orders through a payment provider (provider tokens only, never card data). \
            Every error is application/problem+json (RFC 9457). Money is a decimal string with an ISO 4217 currency.",
        license(name = "Apache-2.0"),
    ),
    paths(create_payment, capture_payment, void_payment, create_refund, list_refunds, refund_payment, find_payment, list_payments, platform::http::health, platform::http::ready, platform::metrics::metrics_endpoint,
        crate::ops::order_story,
        platform::ops::dead_letters::list_dead_letters, platform::ops::dead_letters::find_dead_letter,
        platform::ops::dead_letters::redrive_dead_letter, platform::ops::dead_letters::discard_dead_letter,
        platform::ops::jobs::list_jobs, platform::ops::jobs::find_job, platform::ops::jobs::retry_job, platform::ops::jobs::discard_job,
        platform::ops::outbox::outbox_status, platform::ops::outbox::republish_outbox, platform::ops::audit::list_audit),
    components(schemas(Problem, FieldError, PaymentData, RefundBody, CreateRefundBody, RefundData, RefundListResponse, CaptureBody, CaptureMethod)),
    modifiers(&StandardResponses),
    tags((name = "payments", description = "Payments"), (name = "operations", description = "Liveness and readiness"),
        (name = "ops", description = "The operators' console: dead letters, jobs, the outbox, the audit trail and an order's story. Every operation needs the `payments.ops` scope (no other scope opens it); every change is audited."))
)]
pub struct ApiDoc;
