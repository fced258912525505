//! Handlers of `/api/v1/orders/{id}/returns`.

use actix_web::{HttpResponse, post, web};
use contracts::order::OrderData;
use platform::{FieldError, Problem, auth::Authenticated, json::ApiJson, rate_limit::RateLimits};
use serde::Deserialize;
use utoipa::ToSchema;
use uuid::Uuid;

use super::orders::{ADMIN, WRITE, actor, order_response};
use super::rate_limit;
use crate::domain::{OrderId, Quantity, ReturnLine};
use crate::service::Orders;

/// Lines of a delivered order to send back.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateReturnBody {
    /// The lines and how many units of each.
    #[schema(min_items = 1, max_items = 100)]
    pub items: Vec<ReturnItemBody>,
    /// Why (`damaged`, `wrong_size`, …).
    #[schema(example = "damaged", max_length = 500)]
    pub reason: String,
}

/// Units of one order line to return.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReturnItemBody {
    pub item_id: Uuid,
    #[schema(minimum = 1, example = 1)]
    pub quantity: i64,
}

impl CreateReturnBody {
    fn into_lines(self) -> Result<(Vec<ReturnLine>, String), Problem> {
        let mut errors = Vec::new();
        if self.items.is_empty() || self.items.len() > 100 {
            errors.push(FieldError::new("items", "must hold 1 to 100 lines"));
        }
        let lines: Vec<ReturnLine> = self
            .items
            .iter()
            .enumerate()
            .filter_map(|(index, item)| match Quantity::parse(item.quantity) {
                Ok(quantity) => Some(ReturnLine {
                    item_id: item.item_id,
                    quantity,
                }),
                Err(message) => {
                    errors.push(FieldError::new(format!("items[{index}].quantity"), message));
                    None
                }
            })
            .collect();
        let reason = crate::domain::values::text(&self.reason, 500)
            .map_err(|message| errors.push(FieldError::new("reason", message)))
            .ok();
        match reason {
            Some(reason) if errors.is_empty() => Ok((lines, reason)),
            _ => Err(Problem::validation(errors)),
        }
    }
}

/// Return lines of a delivered order (its owner, within the return window).
///
/// Records `order.return_requested`; answers `201` with the order, whose
/// `returns` lists it (`requested`). A line is never returned beyond the
/// units ordered. Nothing is refunded until an admin receives the return.
#[utoipa::path(
    post, path = "/api/v1/orders/{id}/returns", tag = "orders",
    params(("id" = Uuid, Path, description = "Order id")),
    request_body = CreateReturnBody,
    security(("bearer" = ["orders.write"])),
    responses(
        (status = 201, description = "The order with the return requested", body = OrderData),
        (status = 400, description = "Invalid body or an unknown line (`validation_error`)", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such order, or not yours (`not_found`)", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Not delivered (`not_returnable`), the return window closed (`return_window_closed`), or concurrent changes kept winning (`conflict`)", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "More units of a line than remain to return (`return_exceeds_quantity`, with item_id and returnable_quantity)", body = Problem, content_type = "application/problem+json"),
    )
)]
#[post("/orders/{id}/returns")]
pub async fn request_return(
    Authenticated(principal): Authenticated,
    orders: web::Data<Orders>,
    limits: web::Data<RateLimits>,
    id: web::Path<Uuid>,
    ApiJson(body): ApiJson<CreateReturnBody>,
) -> Result<HttpResponse, Problem> {
    principal.require(WRITE, &[ADMIN])?;
    limits.check(rate_limit::CHANGE, &principal.subject)?;
    let (lines, reason) = body.into_lines()?;
    let order = orders
        .request_return(
            &actor(&principal),
            OrderId(*id),
            Uuid::now_v7(),
            lines,
            reason,
        )
        .await?;
    let mut response = order_response(&order);
    *response.status_mut() = actix_web::http::StatusCode::CREATED;
    Ok(response)
}

/// Mark a return received (admins).
///
/// Records `order.return_received` with the refund: the returned lines'
/// price with their share of the discount and tax (shipping is not
/// refunded), computed so that returns never add up to more than was paid
/// for the goods. The refund is made by durable work from the payment that
/// paid the order (`order.refunded` follows). Receiving it again changes
/// nothing.
#[utoipa::path(
    post, path = "/api/v1/orders/{id}/returns/{return_id}/receive", tag = "orders",
    params(("id" = Uuid, Path, description = "Order id"), ("return_id" = Uuid, Path, description = "Return id")),
    security(("bearer" = ["orders.admin"])),
    responses(
        (status = 200, description = "The order with the return received", body = OrderData),
        (status = 403, description = "Not an admin (`forbidden`)", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such order or return (`not_found`)", body = Problem, content_type = "application/problem+json"),
    )
)]
#[post("/orders/{id}/returns/{return_id}/receive")]
pub async fn receive_return(
    Authenticated(principal): Authenticated,
    orders: web::Data<Orders>,
    path: web::Path<(Uuid, Uuid)>,
) -> Result<HttpResponse, Problem> {
    principal.require(ADMIN, &[])?;
    let (id, return_id) = *path;
    let order = orders
        .receive_return(&actor(&principal), OrderId(id), return_id)
        .await?;
    Ok(order_response(&order))
}
