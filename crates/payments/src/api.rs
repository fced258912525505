//! The payments HTTP API.

use actix_web::{HttpRequest, HttpResponse, get, http::StatusCode, http::header, post, web};
use contracts::money::Currency;
use contracts::payment::{
    CaptureBody, CaptureMethod, CreatePaymentBody, CreateRefundBody, PaymentData, RefundBody,
    RefundData,
};
use platform::openapi::StandardResponses;
use platform::{
    FieldError, Problem,
    auth::{Authenticated, Principal},
    json::{OptionalJson, RawJson},
};
use serde::Deserialize;
use utoipa::{IntoParams, OpenApi, ToSchema};
use uuid::Uuid;

use crate::domain::{CaptureRefusal, RefundRefusal, Refusal};
use crate::service::{
    Actor, CaptureAnswer, NewPayment, PaymentError, Payments, RefundAsk, RefundRequested,
    capture_refusal_kind, refund_data, refund_refusal_kind, refusal_kind,
};

pub const READ: &str = "payments.read";
pub const WRITE: &str = "payments.write";
pub const ADMIN: &str = "payments.admin";
/// The operators' console (`/api/v1/ops`); no other scope opens it.
pub const OPS: &str = "payments.ops";

/// Rate-limit classes: charging, refunding.
pub const CREATE_LIMIT: &str = "payments.create";
pub const REFUND_LIMIT: &str = "payments.refund";

/// Query of `GET /api/v1/payments`.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ListPaymentsQuery {
    /// Only the payments of this order.
    pub order_id: Option<Uuid>,
    /// At most this many (1 to 100, default 20).
    pub limit: Option<i64>,
}

/// Payments, newest first.
#[derive(Debug, serde::Serialize, ToSchema)]
pub struct PaymentListResponse {
    pub data: Vec<PaymentData>,
}

/// The caller, with the trace context of this request's span.
fn actor(principal: &Principal) -> Actor {
    Actor::of(principal, &[ADMIN])
}

impl From<PaymentError> for Problem {
    fn from(error: PaymentError) -> Self {
        match error {
            PaymentError::NotFound => Problem::not_found("no such payment"),
            PaymentError::Forbidden(detail) => Problem::forbidden(detail),
            PaymentError::Refused(refusal) => {
                let kind = refusal_kind(&refusal);
                match refusal {
                    Refusal::OrderNotFound => Problem::new(StatusCode::NOT_FOUND, kind, "Order not found")
                        .with_detail("no such order of yours; nothing was charged"),
                    Refusal::NotPayable(status) => Problem::new(StatusCode::CONFLICT, kind, "Order not payable")
                        .with_detail(format!("the order is {}; only a pending order can be paid, nothing was charged", status.as_str()))
                        .with_extension("order_status", status.as_str()),
                    Refusal::AmountMismatch { expected } => Problem::new(StatusCode::UNPROCESSABLE_ENTITY, kind, "Amount does not match the order")
                        .with_detail(format!("the order's total is {expected} {}; pay exactly that, nothing was charged", expected.currency()))
                        .with_extension("expected_amount", expected.to_string())
                        .with_extension("expected_currency", expected.currency().code()),
                }
            }
            PaymentError::OrdersUnavailable(cause) => {
                tracing::warn!(error.message = %cause, "could not check an order with orders");
                Problem::service_unavailable("dependency_unavailable", "Unable to check the order")
                    .with_detail("the order could not be checked with the orders service; nothing was charged, retry later")
                    .with_retry_after(1)
            }
            PaymentError::CaptureRefused(refusal) => {
                let kind = capture_refusal_kind(&refusal);
                match refusal {
                    CaptureRefusal::NotCapturable(status) => Problem::new(StatusCode::CONFLICT, kind, "Not capturable")
                        .with_detail(format!("the payment is {}; only an authorized payment can be captured", status.as_str()))
                        .with_extension("payment_status", status.as_str()),
                    CaptureRefusal::ExceedsAuthorized { authorized } => Problem::new(StatusCode::UNPROCESSABLE_ENTITY, kind, "Capture exceeds the authorization")
                        .with_detail(format!("at most {authorized} {} is authorized; nothing was captured", authorized.currency()))
                        .with_extension("authorized_amount", authorized.to_string()),
                    CaptureRefusal::Zero => Problem::validation(vec![FieldError::new("amount", "must be greater than zero")]),
                    CaptureRefusal::InvalidAmount(message) => Problem::validation(vec![FieldError::new("amount", message)]),
                }
            }
            PaymentError::NotVoidable(status) => Problem::new(StatusCode::CONFLICT, "not_voidable", "Not voidable")
                .with_detail(format!("the payment is {}; only an authorized payment can be voided (refund a captured one)", status.as_str()))
                .with_extension("payment_status", status.as_str()),
            PaymentError::ProviderDeclined(reason) => Problem::new(StatusCode::CONFLICT, "provider_declined", "Declined by the provider")
                .with_detail(format!("the provider declined ({reason}); the payment is unchanged"))
                .with_extension("reason", reason),
            PaymentError::ProviderUnavailable(reason) => {
                tracing::warn!(error.message = %reason, "the payment provider kept failing");
                Problem::service_unavailable("provider_unavailable", "Payment provider unavailable")
                    .with_detail("the payment provider kept failing; nothing changed, retry later")
                    .with_retry_after(5)
            }
            PaymentError::RefundRefused(refusal) => {
                let kind = refund_refusal_kind(&refusal);
                match refusal {
                    RefundRefusal::NotRefundable(status) => Problem::new(StatusCode::CONFLICT, kind, "Nothing to refund")
                        .with_detail(format!("the payment is {}; no money was taken, nothing was refunded", status.as_str()))
                        .with_extension("payment_status", status.as_str()),
                    RefundRefusal::ExceedsCaptured { refundable } => Problem::new(StatusCode::UNPROCESSABLE_ENTITY, kind, "Refund exceeds what was captured")
                        .with_detail(format!("at most {refundable} {} can still be refunded; nothing was refunded", refundable.currency()))
                        .with_extension("refundable_amount", refundable.to_string())
                        .with_extension("currency", refundable.currency().code()),
                    RefundRefusal::CurrencyMismatch { expected } => Problem::validation(vec![FieldError::new("currency", format!("the payment is in {expected}"))]),
                    RefundRefusal::Zero => Problem::validation(vec![FieldError::new("amount", "must be greater than zero")]),
                    RefundRefusal::InvalidAmount(message) => Problem::validation(vec![FieldError::new("amount", message)]),
                }
            }
            PaymentError::OrderAlreadyHasPayment => Problem::new(StatusCode::CONFLICT, contracts::problem::PAYMENT_EXISTS, "Order already paid")
                .with_detail("the order already has a payment in progress or completed; it is never charged twice"),
            PaymentError::KeyInFlight => platform::idempotency::in_flight(),
            PaymentError::KeyMismatch => platform::idempotency::mismatch(),
            PaymentError::Unexpected(cause) => Problem::internal(&cause),
        }
    }
}

fn new_payment(body: CreatePaymentBody, actor: &Actor) -> Result<NewPayment, Problem> {
    let mut errors = Vec::new();
    let currency = Currency::parse(&body.currency)
        .map_err(|e| errors.push(FieldError::new("currency", e.to_string())))
        .ok();
    let amount = currency.and_then(|currency| {
        body.amount
            .to_money(currency)
            .map_err(|e| e.to_string())
            .and_then(|m| {
                if m.minor() > 0 {
                    Ok(m)
                } else {
                    Err("must be greater than zero".into())
                }
            })
            .map_err(|e| errors.push(FieldError::new("amount", e)))
            .ok()
    });
    let mut text = |field: &str, value: &str, max: usize| {
        let value = value.trim();
        if value.is_empty()
            || value.len() > max
            || value.chars().any(|c| c.is_whitespace() || c.is_control())
        {
            errors.push(FieldError::new(
                field,
                format!("must be 1 to {max} characters without spaces"),
            ));
        }
        value.to_owned()
    };
    let method = text("method", &body.method, 50);
    let token = text("token", &body.token, 200);
    let user_id = match body.user_id {
        Some(user) => text("user_id", &user, 128),
        None => actor.user_id.clone(),
    };
    match amount {
        Some(amount) if errors.is_empty() => Ok(NewPayment {
            order_id: body.order_id,
            user_id,
            amount,
            method,
            token,
            capture_method: body.capture_method.unwrap_or_default(),
        }),
        _ => Err(Problem::validation(errors)),
    }
}

/// Charge an order.
///
/// Honours `Idempotency-Key`: the same key with the same body replays the
/// first response byte for byte (with `Idempotent-Replayed: true`), with a
/// different body is a 422, while the first is still running a 409. An order
/// is charged at most once, whatever is retried, and only when it exists, is
/// the caller's (or the caller is an admin), is `pending`, and `amount` and
/// `currency` are exactly its total; otherwise nothing is charged or stored.
/// The charge is synchronous: the answer is `201` with the payment's final
/// state (`succeeded` or `failed`), and the matching event is published.
#[utoipa::path(
    post, path = "/api/v1/payments", tag = "payments",
    request_body = CreatePaymentBody,
    params(("Idempotency-Key" = Option<String>, Header, description = "Makes retries safe; scoped to the caller")),
    security(("bearer" = ["payments.write"])),
    responses(
        (status = 201, description = "The payment, settled (succeeded or failed)", body = PaymentData),
        (status = 400, description = "Invalid request (`validation_error`, `malformed_request`) or card data sent (`card_data_refused`)", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such order of the caller (`order_not_found`)", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Order not payable (`order_not_payable`), already has a payment (`payment_exists`), or the same key is in flight (`idempotency_in_flight`)", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Amount or currency is not the order's total (`amount_mismatch`, with expected_amount and expected_currency), or Idempotency-Key reused with another request (`idempotency_key_reused`)", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "The order could not be checked (`dependency_unavailable`); nothing charged", body = Problem, content_type = "application/problem+json"),
    )
)]
#[post("/payments")]
pub async fn create_payment(
    Authenticated(principal): Authenticated,
    request: HttpRequest,
    payments: web::Data<Payments>,
    limits: web::Data<platform::rate_limit::RateLimits>,
    body: RawJson,
) -> Result<HttpResponse, Problem> {
    principal.require(WRITE, &[ADMIN])?;
    // Orders charges for the whole shop under its service identity (an
    // admin): users are limited, trusted callers are not.
    if !principal.has(ADMIN) {
        limits.check(CREATE_LIMIT, &principal.subject)?;
    }
    let actor = actor(&principal);
    let key = platform::idempotency::from_raw(&request, &body)?;
    // Parsed from the text itself: a JSON number's digits are read exactly.
    let new_payment = new_payment(body.parse::<CreatePaymentBody>()?, &actor)?;
    let reply = payments.create(&actor, new_payment, key).await?;
    let mut response = HttpResponse::Created();
    response.insert_header((header::CONTENT_TYPE, "application/json"));
    if reply.replayed {
        response.insert_header((platform::idempotency::REPLAYED_HEADER, "true"));
    }
    Ok(response.body(reply.body))
}

/// Capture an authorized payment (manual capture; admins and the orders
/// service, which captures when the order ships).
///
/// Takes `amount` (all of it by default) of the hold, once: capturing again
/// answers `200` with the payment as it stands. `payment.captured` is
/// published. A capture the provider declines changes nothing (`409
/// provider_declined`, the payment stays `authorized`).
#[utoipa::path(
    post, path = "/api/v1/payments/{id}/capture", tag = "payments",
    params(("id" = Uuid, Path, description = "Payment id")),
    request_body(content = Option<CaptureBody>),
    security(("bearer" = ["payments.admin"])),
    responses(
        (status = 200, description = "Captured (now or before)", body = PaymentData),
        (status = 400, description = "Invalid body or an unknown field (`validation_error`), malformed JSON (`malformed_request`)", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not an admin (`forbidden`)", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such payment (`not_found`)", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Not authorized (`not_capturable`), or declined by the provider (`provider_declined`, with reason)", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "The body is not JSON (`unsupported_media_type`)", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "More than is authorized (`capture_exceeds_authorized`)", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "The provider kept failing (`provider_unavailable`); nothing changed", body = Problem, content_type = "application/problem+json"),
    )
)]
#[post("/payments/{id}/capture")]
pub async fn capture_payment(
    Authenticated(principal): Authenticated,
    payments: web::Data<Payments>,
    id: web::Path<Uuid>,
    body: OptionalJson,
) -> Result<HttpResponse, Problem> {
    principal.require(ADMIN, &[])?;
    let body = body.parse_or_default::<CaptureBody>()?;
    let answer = payments
        .capture(&actor(&principal), *id, body.amount)
        .await?;
    let (CaptureAnswer::Done(payment) | CaptureAnswer::AlreadyDone(payment)) = answer;
    Ok(HttpResponse::Ok().json(crate::service::payment_data(&payment)))
}

/// Void an authorized payment: release the hold (manual capture; admins and
/// the orders service). Nothing was taken, so nothing is refunded; voiding
/// again answers `200` with the payment as it stands. `payment.voided` is
/// published. A captured payment is refunded instead (`409 not_voidable`).
#[utoipa::path(
    post, path = "/api/v1/payments/{id}/void", tag = "payments",
    params(("id" = Uuid, Path, description = "Payment id")),
    security(("bearer" = ["payments.admin"])),
    responses(
        (status = 200, description = "Voided (now or before)", body = PaymentData),
        (status = 400, description = "A body was sent (`validation_error`: void takes none)", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not an admin (`forbidden`)", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such payment (`not_found`)", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Not authorized (`not_voidable`), or declined by the provider (`provider_declined`)", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "The provider kept failing (`provider_unavailable`); nothing changed", body = Problem, content_type = "application/problem+json"),
    )
)]
#[post("/payments/{id}/void")]
pub async fn void_payment(
    Authenticated(principal): Authenticated,
    payments: web::Data<Payments>,
    id: web::Path<Uuid>,
    body: OptionalJson,
) -> Result<HttpResponse, Problem> {
    principal.require(ADMIN, &[])?;
    body.parse_or_default::<NoBody>()?;
    let answer = payments.void(&actor(&principal), *id).await?;
    let (CaptureAnswer::Done(payment) | CaptureAnswer::AlreadyDone(payment)) = answer;
    Ok(HttpResponse::Ok().json(crate::service::payment_data(&payment)))
}

/// An empty JSON object, the only body `void` accepts.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct NoBody {}

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

/// Get a payment.
#[utoipa::path(
    get, path = "/api/v1/payments/{id}", tag = "payments",
    params(("id" = Uuid, Path, description = "Payment id")),
    security(("bearer" = ["payments.read"])),
    responses(
        (status = 200, description = "The payment", body = PaymentData),
        (status = 404, description = "No such payment, or not yours (`not_found`)", body = Problem, content_type = "application/problem+json"),
    )
)]
#[get("/payments/{id}")]
pub async fn find_payment(
    Authenticated(principal): Authenticated,
    payments: web::Data<Payments>,
    id: web::Path<Uuid>,
) -> Result<HttpResponse, Problem> {
    principal.require(READ, &[ADMIN])?;
    let payment = payments.find(&actor(&principal), *id).await?;
    Ok(HttpResponse::Ok().json(crate::service::payment_data(&payment)))
}

/// List payments (yours; an admin sees all), optionally of one order.
#[utoipa::path(
    get, path = "/api/v1/payments", tag = "payments",
    params(ListPaymentsQuery),
    security(("bearer" = ["payments.read"])),
    responses(
        (status = 200, description = "Payments, newest first", body = PaymentListResponse),
        (status = 400, description = "Invalid query (`validation_error`)", body = Problem, content_type = "application/problem+json"),
    )
)]
#[get("/payments")]
pub async fn list_payments(
    Authenticated(principal): Authenticated,
    payments: web::Data<Payments>,
    query: web::Query<ListPaymentsQuery>,
) -> Result<HttpResponse, Problem> {
    principal.require(READ, &[ADMIN])?;
    let limit = match query.limit {
        None => 20,
        Some(limit @ 1..=100) => limit,
        Some(_) => {
            return Err(Problem::validation(vec![FieldError::new(
                "query.limit",
                "must be between 1 and 100",
            )]));
        }
    };
    let found = payments
        .list(&actor(&principal), query.order_id, limit)
        .await?;
    Ok(HttpResponse::Ok().json(PaymentListResponse {
        data: found.iter().map(crate::service::payment_data).collect(),
    }))
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
    modifiers(&BearerAuth, &StandardResponses),
    tags((name = "payments", description = "Payments"), (name = "operations", description = "Liveness and readiness"),
        (name = "ops", description = "The operators' console: dead letters, jobs, the outbox, the audit trail and an order's story. Every operation needs the `payments.ops` scope (no other scope opens it); every change is audited."))
)]
pub struct ApiDoc;

struct BearerAuth;

impl utoipa::Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
        let mut scheme = Http::new(HttpAuthScheme::Bearer);
        scheme.bearer_format = Some("JWT".to_owned());
        openapi
            .components
            .get_or_insert_with(Default::default)
            .add_security_scheme("bearer", SecurityScheme::Http(scheme));
    }
}
