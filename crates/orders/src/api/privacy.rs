//! Erasing a user's personal data on request (`orders.privacy`).

use actix_web::{HttpResponse, delete, web};
use platform::{FieldError, Problem, auth::Authenticated};

use crate::domain::UserId;
use crate::service::{Actor, Orders};

/// Erases personal data; no other scope opens it (`orders.admin`
/// included).
pub const PRIVACY: &str = "orders.privacy";

/// Erase a user's personal data (GDPR art. 17), for good.
///
/// Destroys the user's data key: every address, note and reason of theirs,
/// in every stored event and every backup, becomes unreadable; each of their
/// orders records `order.personal_data_erased` (published, so that
/// subscribers erase their copies) and reads from then on without those
/// fields, its amounts, items, statuses and history intact. Asking again
/// changes nothing more (`key_destroyed: false`, `orders_erased: 0`); a
/// user with no orders is answered the same way. A later order of the user
/// gets a new key. Audited (`orders.erasures` and an `audit` log line).
#[utoipa::path(
    delete, path = "/api/v1/users/{user_id}/personal-data", tag = "privacy",
    params(("user_id" = String, Path, description = "The user (the `sub` their orders were placed with)")),
    security(("bearer" = ["orders.privacy"])),
    responses(
        (status = 200, description = "Erased (now or before)", body = crate::service::Erasure),
        (status = 400, description = "Not a user id (`validation_error`)", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Without `orders.privacy` (`forbidden`)", body = Problem, content_type = "application/problem+json"),
    )
)]
#[delete("/users/{user_id}/personal-data")]
pub async fn erase_personal_data(
    Authenticated(principal): Authenticated,
    orders: web::Data<Orders>,
    user_id: web::Path<String>,
) -> Result<HttpResponse, Problem> {
    principal.require(PRIVACY, &[])?;
    let user = UserId::parse(&user_id)
        .map_err(|message| Problem::validation(vec![FieldError::new("user_id", message)]))?;
    let erasure = orders
        .erase_personal_data(&Actor::of(&principal, &[PRIVACY]), &user)
        .await?;
    Ok(HttpResponse::Ok().json(erasure))
}
