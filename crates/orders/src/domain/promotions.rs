//! Promotions: coupon codes and the discount they give. Pure: built from
//! configuration (`promotions:`) by the caller, asked with the clock's time.
//!
//! A coupon gives a percentage of the subtotal or a fixed amount in one
//! currency, optionally only above a minimum subtotal, inside a validity
//! window, and a limited number of times per user (counted by the store
//! when the order is placed, given back when it is cancelled).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::money::{Currency, Money, MoneyError};

/// One coupon as configured.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CouponConfig {
    /// Percent off the subtotal, at most 2 decimals (`"10"`). Or `amount`.
    #[serde(default)]
    pub percent: Option<String>,
    /// A fixed amount off, in `currency` (`"5.00"`).
    #[serde(default)]
    pub amount: Option<String>,
    /// The only currency the coupon applies to; required with `amount` or
    /// `min_subtotal`.
    #[serde(default)]
    pub currency: Option<String>,
    /// The subtotal an order needs for the discount, in `currency`.
    #[serde(default)]
    pub min_subtotal: Option<String>,
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub valid_from: Option<OffsetDateTime>,
    /// The coupon is refused from this instant on.
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub valid_until: Option<OffsetDateTime>,
    /// How many live orders one user may place with it (cancelled ones give
    /// the use back). Unset: no limit.
    #[serde(default)]
    pub per_user_limit: Option<u32>,
}

/// `promotions:` of the orders configuration: coupon code → rule.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PromotionsConfig {
    #[serde(default)]
    pub coupons: BTreeMap<String, CouponConfig>,
}

/// What a coupon takes off.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Discount {
    /// Basis points of the subtotal (1000 = 10%), rounded half up.
    PercentBp(u32),
    /// A fixed amount, never more than the subtotal.
    Fixed(Money),
}

/// A coupon as applied to an order: recorded in `order.created`, so later
/// changes to the configuration never alter a placed order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AppliedCoupon {
    pub code: String,
    pub discount: Discount,
    /// Below this subtotal (after an item edit) the coupon gives nothing.
    #[serde(default)]
    pub min_subtotal: Option<Money>,
}

impl AppliedCoupon {
    /// The discount on `subtotal`: zero below the minimum, never more than
    /// the subtotal.
    pub fn discount_on(&self, subtotal: Money) -> Result<Money, MoneyError> {
        let zero = Money::zero(subtotal.currency());
        if self
            .min_subtotal
            .is_some_and(|minimum| subtotal.minor() < minimum.minor())
        {
            return Ok(zero);
        }
        match self.discount {
            Discount::PercentBp(bp) => subtotal.apply_rate_bp(bp),
            Discount::Fixed(amount) if amount.currency() == subtotal.currency() => {
                Ok(if amount.minor() > subtotal.minor() {
                    subtotal
                } else {
                    amount
                })
            }
            Discount::Fixed(_) => Ok(zero),
        }
    }
}

/// Why a coupon does not apply: `400 invalid_coupon` with this as detail.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CouponRefusal {
    #[error("`{0}` is not a valid coupon code")]
    Unknown(String),
    #[error("coupon `{0}` is not valid yet")]
    NotYetValid(String),
    #[error("coupon `{0}` has expired")]
    Expired(String),
    #[error("coupon `{code}` applies to orders in {currency} only")]
    WrongCurrency { code: String, currency: Currency },
    #[error("coupon `{code}` needs a subtotal of at least {minimum} {}", minimum.currency())]
    BelowMinimum { code: String, minimum: Money },
    #[error("coupon `{0}` has been used as often as it may be by this user")]
    LimitReached(String),
}

#[derive(Debug, Clone)]
struct Coupon {
    discount: Discount,
    currency: Option<Currency>,
    min_subtotal: Option<Money>,
    valid_from: Option<OffsetDateTime>,
    valid_until: Option<OffsetDateTime>,
    per_user_limit: Option<u32>,
}

/// A coupon that applies, and how often each user may use it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Redemption {
    pub coupon: AppliedCoupon,
    pub per_user_limit: Option<u32>,
}

/// Validated promotions.
#[derive(Debug, Clone, Default)]
pub struct Promotions {
    /// By upper-case code.
    coupons: BTreeMap<String, Coupon>,
}

impl Promotions {
    pub fn from_config(config: &PromotionsConfig) -> Result<Promotions, String> {
        let mut coupons = BTreeMap::new();
        for (code, rule) in &config.coupons {
            let at = |what: &str| format!("promotions.coupons.{code}: {what}");
            let normalized = code.trim().to_ascii_uppercase();
            if normalized.is_empty()
                || normalized.len() > 64
                || !normalized
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
            {
                return Err(at("a code is 1 to 64 letters, digits, `-` or `_`"));
            }
            let currency = rule
                .currency
                .as_deref()
                .map(Currency::parse)
                .transpose()
                .map_err(|e| at(&e.to_string()))?;
            let in_currency = |amount: &str| match currency {
                Some(currency) => Money::parse(amount, currency).map_err(|e| at(&e.to_string())),
                None => Err(at("an amount needs `currency`")),
            };
            let discount = match (&rule.percent, &rule.amount) {
                (Some(percent), None) => Discount::PercentBp(
                    super::money::percent_to_bp(percent)
                        .ok_or_else(|| at("percent must be 0 to 100 with at most 2 decimals"))?,
                ),
                (None, Some(amount)) => Discount::Fixed(in_currency(amount)?),
                _ => return Err(at("give exactly one of `percent` and `amount`")),
            };
            let min_subtotal = rule.min_subtotal.as_deref().map(in_currency).transpose()?;
            coupons.insert(
                normalized,
                Coupon {
                    discount,
                    currency,
                    min_subtotal,
                    valid_from: rule.valid_from,
                    valid_until: rule.valid_until,
                    per_user_limit: rule.per_user_limit,
                },
            );
        }
        Ok(Promotions { coupons })
    }

    /// The coupon `code` (case-insensitive) for an order in `currency` with
    /// `subtotal`, at `now`.
    pub fn redeem(
        &self,
        code: &str,
        subtotal: Money,
        now: OffsetDateTime,
    ) -> Result<Redemption, CouponRefusal> {
        let code = code.trim().to_ascii_uppercase();
        let Some(coupon) = self.coupons.get(&code) else {
            return Err(CouponRefusal::Unknown(code));
        };
        if coupon.valid_from.is_some_and(|from| now < from) {
            return Err(CouponRefusal::NotYetValid(code));
        }
        if coupon.valid_until.is_some_and(|until| now >= until) {
            return Err(CouponRefusal::Expired(code));
        }
        if let Some(currency) = coupon.currency
            && currency != subtotal.currency()
        {
            return Err(CouponRefusal::WrongCurrency { code, currency });
        }
        if let Some(minimum) = coupon.min_subtotal
            && subtotal.minor() < minimum.minor()
        {
            return Err(CouponRefusal::BelowMinimum { code, minimum });
        }
        Ok(Redemption {
            coupon: AppliedCoupon {
                code,
                discount: coupon.discount,
                min_subtotal: coupon.min_subtotal,
            },
            per_user_limit: coupon.per_user_limit,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    fn usd(amount: &str) -> Money {
        Money::parse(amount, Currency::parse("USD").unwrap()).unwrap()
    }

    fn promotions() -> Promotions {
        let config: PromotionsConfig = serde_json::from_value(serde_json::json!({
            "coupons": {
                "summer10": {"percent": "10", "valid_until": "2030-01-01T00:00:00Z"},
                "FIVE": {"amount": "5.00", "currency": "USD", "min_subtotal": "20.00", "per_user_limit": 1},
                "OLD": {"percent": "50", "valid_until": "2023-01-01T00:00:00Z"},
                "SOON": {"percent": "5", "valid_from": "2099-01-01T00:00:00Z"}
            }
        }))
        .unwrap();
        Promotions::from_config(&config).unwrap()
    }

    const NOW: OffsetDateTime = datetime!(2026-11-22 12:00 UTC);

    #[test]
    fn coupons_are_matched_case_insensitively_and_checked() {
        let p = promotions();
        let summer = p.redeem("Summer10", usd("89.98"), NOW).unwrap();
        assert_eq!(summer.coupon.code, "SUMMER10");
        assert_eq!(
            summer.coupon.discount_on(usd("89.98")).unwrap(),
            usd("9.00")
        );
        assert_eq!(
            p.redeem("NOPE", usd("1"), NOW),
            Err(CouponRefusal::Unknown("NOPE".into()))
        );
        assert!(matches!(
            p.redeem("old", usd("1"), NOW),
            Err(CouponRefusal::Expired(_))
        ));
        assert!(matches!(
            p.redeem("SOON", usd("1"), NOW),
            Err(CouponRefusal::NotYetValid(_))
        ));
        assert!(matches!(
            p.redeem("FIVE", usd("19.99"), NOW),
            Err(CouponRefusal::BelowMinimum { .. })
        ));
        let eur = Money::parse("50", Currency::parse("EUR").unwrap()).unwrap();
        assert!(matches!(
            p.redeem("FIVE", eur, NOW),
            Err(CouponRefusal::WrongCurrency { .. })
        ));
        let five = p.redeem("five", usd("20.00"), NOW).unwrap();
        assert_eq!(five.per_user_limit, Some(1));
        assert_eq!(five.coupon.discount_on(usd("20.00")).unwrap(), usd("5.00"));
        // Below the minimum after an edit, the coupon gives nothing.
        assert_eq!(five.coupon.discount_on(usd("19.00")).unwrap(), usd("0"));
    }

    #[test]
    fn a_fixed_discount_never_exceeds_the_subtotal() {
        let coupon = AppliedCoupon {
            code: "BIG".into(),
            discount: Discount::Fixed(usd("100")),
            min_subtotal: None,
        };
        assert_eq!(coupon.discount_on(usd("30.00")).unwrap(), usd("30.00"));
    }

    #[test]
    fn bad_configuration_is_refused_at_start() {
        for bad in [
            serde_json::json!({"X": {}}),
            serde_json::json!({"X": {"percent": "10", "amount": "1", "currency": "USD"}}),
            serde_json::json!({"X": {"amount": "1"}}),
            serde_json::json!({"X": {"percent": "101"}}),
            serde_json::json!({"bad code": {"percent": "1"}}),
        ] {
            let config: PromotionsConfig =
                serde_json::from_value(serde_json::json!({ "coupons": bad })).unwrap();
            assert!(Promotions::from_config(&config).is_err(), "{config:?}");
        }
    }
}
