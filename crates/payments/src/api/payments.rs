//! Charging, capturing, voiding and reading payments.

use actix_web::{HttpRequest, HttpResponse, get, http::header, post, web};
use contracts::money::Currency;
use contracts::payment::{CaptureBody, CreatePaymentBody, PaymentData};
use platform::{
    FieldError, Problem,
    auth::Authenticated,
    json::{OptionalJson, RawJson},
};
use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use super::{ADMIN, CREATE_LIMIT, READ, WRITE, actor};
use crate::service::{Actor, CaptureAnswer, NewPayment, Payments};

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
