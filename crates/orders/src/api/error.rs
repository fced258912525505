//! The one place orders' errors become problem+json.

use actix_web::http::StatusCode;
use platform::{FieldError, Problem};

use crate::domain::RuleViolation;
use crate::service::OrderError;

impl From<OrderError> for Problem {
    fn from(error: OrderError) -> Self {
        match error {
            OrderError::Invalid(violations) => Problem::validation(
                violations
                    .into_iter()
                    .map(|v| FieldError::new(v.field, v.message))
                    .collect(),
            ),
            OrderError::NotFound => Problem::not_found("no such order"),
            OrderError::Forbidden(detail) => Problem::forbidden(detail),
            OrderError::Rule(rule) => rule_problem(rule),
            OrderError::UnknownStatus(status) => Problem::new(
                StatusCode::BAD_REQUEST,
                "invalid_transition",
                "Invalid status transition",
            )
            .with_detail(format!(
                "`{status}` is not an order status (pending, paid, shipped, delivered, cancelled)"
            )),
            OrderError::VersionMismatch { expected, current } => Problem::new(
                StatusCode::PRECONDITION_FAILED,
                "precondition_failed",
                "The order has changed",
            )
            .with_detail(format!(
                "If-Match asked for version {expected}; the order is at version {current}"
            ))
            .with_extension("current_version", current),
            OrderError::KeyMismatch => platform::idempotency::mismatch(),
            OrderError::ProductsNotFound(unknown) => {
                let names: Vec<&str> = unknown
                    .iter()
                    .map(|(_, product)| product.as_str())
                    .collect();
                let mut problem = Problem::new(
                    StatusCode::BAD_REQUEST,
                    "product_not_found",
                    "Product not found",
                )
                .with_detail(format!("the catalogue has no product {}", names.join(", ")));
                problem.errors = unknown
                    .iter()
                    .map(|(field, product)| {
                        FieldError::new(
                            field.clone(),
                            format!("no product `{product}` in the catalogue"),
                        )
                    })
                    .collect();
                problem
            }
            OrderError::InsufficientStock(shortages) => Problem::new(
                StatusCode::CONFLICT,
                "insufficient_stock",
                "Insufficient stock",
            )
            .with_detail("not enough stock for every line; nothing was reserved or written")
            .with_extension("items", serde_json::to_value(shortages).unwrap_or_default()),
            OrderError::CatalogUnavailable(_) => Problem::service_unavailable(
                "dependency_unavailable",
                "Unable to check the catalogue",
            )
            .with_detail("the Catalog Service did not answer; nothing was written, retry later")
            .with_retry_after(5),
            OrderError::UserNotFound(user) => {
                Problem::new(StatusCode::BAD_REQUEST, "user_not_found", "User not found")
                    .with_detail(format!("the User Service knows no user `{user}`"))
            }
            OrderError::InvalidCoupon(refusal) => {
                let mut problem =
                    Problem::new(StatusCode::BAD_REQUEST, "invalid_coupon", "Invalid coupon")
                        .with_detail(refusal.to_string());
                problem.errors = vec![FieldError::new("coupon_code", refusal.to_string())];
                problem
            }
            OrderError::UserServiceUnavailable(_) => {
                Problem::service_unavailable("dependency_unavailable", "Unable to validate user")
                    .with_detail(
                        "the User Service did not answer; nothing was written, retry later",
                    )
                    .with_retry_after(5)
            }
            OrderError::KeyInFlight => platform::idempotency::in_flight(),
            OrderError::HistoryFull(events) => Problem::new(
                StatusCode::CONFLICT,
                "order_history_full",
                "The order's items can no longer be edited",
            )
            .with_detail(format!(
                "the order has {events} events, the most item edits may bring it to; place a new order"
            )),
            OrderError::Conflict => {
                Problem::conflict("the order is being changed by someone else; retry the request")
            }
            OrderError::Unexpected(cause) => Problem::internal(&cause),
        }
    }
}

fn rule_problem(rule: RuleViolation) -> Problem {
    let field = |field: String| Problem::validation(vec![FieldError::new(field, rule.to_string())]);
    match &rule {
        RuleViolation::NoItems | RuleViolation::TooManyItems | RuleViolation::TotalTooLarge => {
            field("items".to_owned())
        }
        RuleViolation::MixedCurrencies { index, .. } => field(format!("items[{index}].currency")),
        RuleViolation::InvalidTransition { from, to } => Problem::new(
            StatusCode::BAD_REQUEST,
            "invalid_transition",
            "Invalid status transition",
        )
        .with_detail(rule.to_string())
        .with_extension("current_status", from.as_str())
        .with_extension("requested_status", to.as_str()),
        RuleViolation::ItemsFrozen { status } => Problem::new(
            StatusCode::CONFLICT,
            "items_frozen",
            "Items can no longer change",
        )
        .with_detail(rule.to_string())
        .with_extension("current_status", status.as_str()),
        RuleViolation::UnknownItem(_) => Problem::not_found(rule.to_string()),
        RuleViolation::PaymentRefunded => {
            Problem::new(StatusCode::CONFLICT, "payment_refunded", "Payment refunded")
                .with_detail(rule.to_string())
        }
        RuleViolation::NotReturnable { .. } => {
            Problem::new(StatusCode::CONFLICT, "not_returnable", "Not returnable")
                .with_detail(rule.to_string())
        }
        RuleViolation::ReturnWindowClosed { .. } => Problem::new(
            StatusCode::CONFLICT,
            "return_window_closed",
            "Return window closed",
        )
        .with_detail(rule.to_string()),
        RuleViolation::ReturnExceedsQuantity {
            item_id,
            returnable,
        } => Problem::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "return_exceeds_quantity",
            "More units than were ordered",
        )
        .with_detail(rule.to_string())
        .with_extension("item_id", item_id.to_string())
        .with_extension("returnable_quantity", *returnable),
        RuleViolation::InvalidReturn(message) => {
            Problem::validation(vec![FieldError::new("items", message.clone())])
        }
        RuleViolation::UnknownReturn(_) => Problem::not_found(rule.to_string()),
        RuleViolation::ShipmentRecorded => {
            Problem::new(StatusCode::CONFLICT, "shipment_recorded", "Already shipped")
                .with_detail(rule.to_string())
        }
        RuleViolation::PaymentVoided => {
            Problem::new(StatusCode::CONFLICT, "payment_voided", "Payment voided")
                .with_detail(rule.to_string())
        }
    }
}
