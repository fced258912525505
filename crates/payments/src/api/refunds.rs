//! Refunds: a resource per refund, and the shorthand for all that remains.

use actix_web::{HttpRequest, HttpResponse, get, http::header, post, web};
use contracts::money::Currency;
use contracts::payment::{CreateRefundBody, PaymentData, RefundBody, RefundData};
use platform::{FieldError, Problem, auth::Authenticated, json::OptionalJson};
use utoipa::ToSchema;
use uuid::Uuid;

use super::{ADMIN, READ, REFUND_LIMIT, actor};
use crate::service::{Payments, RefundAsk, RefundRequested, refund_data};

/// A payment's refunds, oldest first.
#[derive(Debug, serde::Serialize, ToSchema)]
pub struct RefundListResponse {
    pub data: Vec<RefundData>,
}

/// A refund's reason: printable text of at most 200 characters.
fn reason(reason: Option<String>, errors: &mut Vec<FieldError>) -> String {
    let Some(reason) = reason else {
        return "requested".to_owned();
    };
    let reason = reason.trim();
    if reason.is_empty() || reason.chars().count() > 200 || reason.chars().any(char::is_control) {
        errors.push(FieldError::new(
            "reason",
            "must be 1 to 200 characters without control characters",
        ));
    }
    reason.to_owned()
}

fn refund_ask(body: CreateRefundBody) -> Result<RefundAsk, Problem> {
    let mut errors = Vec::new();
    let currency = body.currency.as_deref().and_then(|code| {
        Currency::parse(code)
            .map_err(|e| errors.push(FieldError::new("currency", e.to_string())))
            .ok()
    });
    let reason = reason(body.reason, &mut errors);
    let items = body.items.unwrap_or_default();
    if items.len() > 100 {
        errors.push(FieldError::new("items", "at most 100 lines"));
    }
    for (index, line) in items.iter().enumerate() {
        if line.quantity == 0 {
            errors.push(FieldError::new(
                format!("items[{index}].quantity"),
                "must be at least 1",
            ));
        }
    }
    if !errors.is_empty() {
        return Err(Problem::validation(errors));
    }
    Ok(RefundAsk {
        amount: body.amount,
        currency,
        reason,
        items,
    })
}

/// Refund a payment, in full or in part (admins and the orders service).
///
/// A refund is a resource: accepted at once with its own id (its amount
/// reserved on the payment, so refunds never add up to more than was
/// captured, however many run at once), then done by durable work that
/// retries until the provider has refunded it, once, with a
/// `payment.refunded` event carrying the refund. `amount` defaults to all
/// that remains. Honours `Idempotency-Key`. A body is never ignored: a
/// wrong media type is a 415, malformed JSON or an unknown field a 400.
#[utoipa::path(
    post, path = "/api/v1/payments/{id}/refunds", tag = "payments",
    params(
        ("id" = Uuid, Path, description = "Payment id"),
        ("Idempotency-Key" = Option<String>, Header, description = "Makes retries safe; scoped to the caller"),
    ),
    request_body(content = Option<CreateRefundBody>),
    security(("bearer" = ["payments.admin"])),
    responses(
        (status = 201, description = "The refund, accepted (pending)", body = RefundData),
        (status = 400, description = "Invalid body or an unknown field (`validation_error`), malformed JSON (`malformed_request`), or card data (`card_data_refused`)", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not an admin (`forbidden`)", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such payment (`not_found`)", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Nothing was taken (`not_refundable`), or the same key is in flight (`idempotency_in_flight`)", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "The body is not JSON (`unsupported_media_type`)", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "More than remains of what was captured (`refund_exceeds_captured`, with refundable_amount), or Idempotency-Key reused with another request (`idempotency_key_reused`)", body = Problem, content_type = "application/problem+json"),
    )
)]
#[post("/payments/{id}/refunds")]
pub async fn create_refund(
    Authenticated(principal): Authenticated,
    request: HttpRequest,
    payments: web::Data<Payments>,
    limits: web::Data<platform::rate_limit::RateLimits>,
    id: web::Path<Uuid>,
    body: OptionalJson,
) -> Result<HttpResponse, Problem> {
    principal.require(ADMIN, &[])?;
    limits.check(REFUND_LIMIT, &principal.subject)?;
    // The body is parsed for the fingerprint only when a key was sent.
    let key = match &body.0 {
        Some(raw) => platform::idempotency::from_raw(&request, raw)?,
        None => platform::idempotency::from_request(&request, &serde_json::Value::Null)?,
    };
    let ask = refund_ask(body.parse_or_default::<CreateRefundBody>()?)?;
    let reply = payments
        .create_refund(&actor(&principal), *id, ask, key)
        .await?;
    let mut response = HttpResponse::Created();
    response.insert_header((header::CONTENT_TYPE, "application/json"));
    if reply.replayed {
        response.insert_header((platform::idempotency::REPLAYED_HEADER, "true"));
    }
    Ok(response.body(reply.body))
}

/// A payment's refunds, oldest first (its owner or an admin).
#[utoipa::path(
    get, path = "/api/v1/payments/{id}/refunds", tag = "payments",
    params(("id" = Uuid, Path, description = "Payment id")),
    security(("bearer" = ["payments.read"])),
    responses(
        (status = 200, description = "The payment's refunds", body = RefundListResponse),
        (status = 404, description = "No such payment, or not yours (`not_found`)", body = Problem, content_type = "application/problem+json"),
    )
)]
#[get("/payments/{id}/refunds")]
pub async fn list_refunds(
    Authenticated(principal): Authenticated,
    payments: web::Data<Payments>,
    id: web::Path<Uuid>,
) -> Result<HttpResponse, Problem> {
    principal.require(READ, &[ADMIN])?;
    let refunds = payments.refunds_of(&actor(&principal), *id).await?;
    Ok(HttpResponse::Ok().json(RefundListResponse {
        data: refunds.iter().map(refund_data).collect(),
    }))
}

/// Refund all that remains of a payment (admins and the orders service).
///
/// The shorthand of `POST /api/v1/payments/{id}/refunds` without an amount:
/// recorded now, done by durable work, once. Asking again changes nothing.
/// `202` with the payment as it stands when the refund is recorded (or is
/// still being done), `200` when it was refunded in full before.
#[utoipa::path(
    post, path = "/api/v1/payments/{id}/refund", tag = "payments",
    params(("id" = Uuid, Path, description = "Payment id")),
    request_body(content = Option<RefundBody>),
    security(("bearer" = ["payments.admin"])),
    responses(
        (status = 200, description = "Already refunded", body = PaymentData),
        (status = 202, description = "The refund is recorded and will be done", body = PaymentData),
        (status = 400, description = "Invalid body or an unknown field (`validation_error`), malformed JSON (`malformed_request`), or card data (`card_data_refused`)", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not an admin (`forbidden`)", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such payment (`not_found`)", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Nothing was taken: the payment failed or is still processing (`not_refundable`)", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "The body is not JSON (`unsupported_media_type`)", body = Problem, content_type = "application/problem+json"),
    )
)]
#[post("/payments/{id}/refund")]
pub async fn refund_payment(
    Authenticated(principal): Authenticated,
    payments: web::Data<Payments>,
    limits: web::Data<platform::rate_limit::RateLimits>,
    id: web::Path<Uuid>,
    body: OptionalJson,
) -> Result<HttpResponse, Problem> {
    principal.require(ADMIN, &[])?;
    limits.check(REFUND_LIMIT, &principal.subject)?;
    let mut errors = Vec::new();
    let reason = reason(body.parse_or_default::<RefundBody>()?.reason, &mut errors);
    if !errors.is_empty() {
        return Err(Problem::validation(errors));
    }
    let requested = payments
        .request_refund(&actor(&principal), *id, &reason)
        .await?;
    Ok(match requested {
        RefundRequested::Accepted(payment) => {
            HttpResponse::Accepted().json(crate::service::payment_data(&payment))
        }
        RefundRequested::AlreadyRefunded(payment) => {
            HttpResponse::Ok().json(crate::service::payment_data(&payment))
        }
    })
}
