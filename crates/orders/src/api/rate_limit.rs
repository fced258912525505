//! The orders API's rate-limit classes (`platform::rate_limit`): each kind
//! of write has its own allowance per user, checked by the handler the
//! request was routed to.

use platform::rate_limit::{LimitConfig, RateLimits};
use serde::Deserialize;

/// Placing an order (`POST /api/v1/orders`).
pub const CREATE: &str = "orders.create";
/// Status changes and cancellations (`PATCH`/`DELETE /api/v1/orders/{id}`).
pub const CHANGE: &str = "orders.change";
/// Adding, changing and removing lines.
pub const ITEMS: &str = "orders.items";

/// `rate_limit:` section of the orders configuration.
#[derive(Debug, Clone, Deserialize)]
pub struct RateLimitConfig {
    /// Turn every limit off (e.g. behind a gateway that limits already).
    pub enabled: bool,
    pub create: LimitConfig,
    pub change: LimitConfig,
    pub items: LimitConfig,
}

impl RateLimitConfig {
    pub fn limits(&self) -> anyhow::Result<RateLimits> {
        RateLimits::new(
            self.enabled,
            &[
                (CREATE, self.create),
                (CHANGE, self.change),
                (ITEMS, self.items),
            ],
        )
    }
}
