//! The one mapping of the payments service's errors to problem+json.

use actix_web::http::StatusCode;
use platform::{FieldError, Problem};

use crate::domain::{CaptureRefusal, RefundRefusal, Refusal};
use crate::service::{PaymentError, capture_refusal_kind, refund_refusal_kind, refusal_kind};

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
