//! Returns: the owner of a delivered order sends some lines back within the
//! return window; an admin marks the return received, which refunds the
//! lines' share of what was paid.
//!
//! A line's share is its price with its share of the discount and the tax;
//! shipping is not refunded (the policy `docs/money-path.md` states). Shares
//! are computed cumulatively, so that rounding never adds up to more than
//! was paid for the goods: the refund of a return is `f(returned so far,
//! this one included) - f(returned before)`, with `f(g) = goods · g /
//! subtotal` rounded down, and returning everything refunds exactly the
//! goods' total.

use serde::{Deserialize, Serialize};
use time::{Duration, OffsetDateTime};
use uuid::Uuid;

use super::money::Money;
use super::values::Quantity;

/// Units of one line sent back.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReturnLine {
    pub item_id: Uuid,
    pub quantity: Quantity,
}

/// Where a return stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReturnStatus {
    /// Asked for by the owner; the goods are on their way back.
    Requested,
    /// Received by the shop; its refund is under way (or done).
    Received,
}

impl ReturnStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            ReturnStatus::Requested => "requested",
            ReturnStatus::Received => "received",
        }
    }
}

/// A return of an order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrderReturn {
    pub id: Uuid,
    pub lines: Vec<ReturnLine>,
    pub reason: String,
    pub status: ReturnStatus,
    /// What receiving it refunds (known once received).
    pub refund: Option<Money>,
    pub requested_at: OffsetDateTime,
}

/// What the shop's return policy allows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReturnPolicy {
    /// How long after delivery a return may be asked for.
    pub window: Duration,
}

impl Default for ReturnPolicy {
    fn default() -> Self {
        Self {
            window: Duration::days(30),
        }
    }
}

/// The cumulative share of `goods` that `returned` (gross, minor units) of
/// `subtotal` (minor units) is worth, rounded down.
pub fn share(goods: i64, returned: i64, subtotal: i64) -> i64 {
    if subtotal <= 0 {
        return 0;
    }
    let returned = returned.clamp(0, subtotal);
    ((i128::from(goods) * i128::from(returned)) / i128::from(subtotal)) as i64
}

#[cfg(test)]
mod tests {
    use super::share;
    use proptest::prelude::*;

    #[test]
    fn returning_everything_refunds_exactly_the_goods() {
        assert_eq!(share(6_498, 6_498, 6_498), 6_498);
        // 3 of 3 units, one at a time: 3333 + 3333 + 3334 = 10000.
        let parts: Vec<i64> = (1..=3)
            .map(|n| share(10_000, n * 100, 300) - share(10_000, (n - 1) * 100, 300))
            .collect();
        assert_eq!(parts, [3_333, 3_333, 3_334]);
    }

    proptest! {
        /// However the units come back, one at a time or together, the
        /// refunds never add up to more than the goods cost, and to exactly
        /// that once everything is back.
        #[test]
        fn cumulative_shares_never_exceed_the_goods(
            goods in 0_i64..10_000_000,
            prices in proptest::collection::vec(1_i64..100_000, 1..8),
        ) {
            let subtotal: i64 = prices.iter().sum();
            let mut returned = 0;
            let mut refunded = 0;
            for price in &prices {
                let refund = share(goods, returned + price, subtotal) - share(goods, returned, subtotal);
                prop_assert!(refund >= 0);
                returned += price;
                refunded += refund;
                prop_assert!(refunded <= goods);
            }
            prop_assert_eq!(refunded, goods);
        }
    }
}
