//! Problem `type`s a caller of the other service acts on: spelled here once,
//! so a rename on the answering side cannot silently change what the
//! calling side matches. (Each service's full list is in its OpenAPI
//! document.)

/// `409`: a request with this Idempotency-Key is still being processed
/// (both services); retry later.
pub const IDEMPOTENCY_IN_FLIGHT: &str = "idempotency_in_flight";

/// `409` from `POST /api/v1/payments`: the order already has a live or
/// successful payment (a charge already made is not made again).
pub const PAYMENT_EXISTS: &str = "payment_exists";
