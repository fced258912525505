//! The shop's pricing policy: the tax rate and the shipping methods with
//! their fees per currency. Pure: built from configuration by the caller.

use std::collections::{BTreeMap, HashMap};

use serde::Deserialize;

use super::money::{Currency, Money};
use super::totals::Charges;

/// Pricing as configured (`pricing:` in the orders configuration).
#[derive(Debug, Clone, Deserialize)]
pub struct PricingConfig {
    /// Tax rate as a decimal string of percent, e.g. `"8.25"`.
    pub tax_rate_percent: String,
    /// Shipping methods → fee per ISO 4217 currency (decimal strings). The
    /// key `"*"` with `"0"` makes a method free in every currency; a currency
    /// a method does not list is not offered.
    pub shipping_methods: BTreeMap<String, BTreeMap<String, String>>,
    /// Methods that deliver without a postal address (digital goods); an
    /// order shipped by any other method needs a `shipping_address`.
    #[serde(default)]
    pub addressless_methods: Vec<String>,
    /// The currency of an order that names none and whose prices do not
    /// say (no catalogue).
    pub default_currency: String,
}

/// Validated pricing.
#[derive(Debug, Clone)]
pub struct Pricing {
    tax_rate_bp: u32,
    /// By lower-case name.
    methods: BTreeMap<String, Fees>,
    addressless: Vec<String>,
    default_currency: Currency,
}

#[derive(Debug, Clone)]
enum Fees {
    Free,
    PerCurrency(HashMap<Currency, Money>),
}

impl Pricing {
    pub fn from_config(config: &PricingConfig) -> Result<Pricing, String> {
        let tax_rate_bp =
            super::money::percent_to_bp(&config.tax_rate_percent).ok_or_else(|| {
                format!(
                    "pricing.tax_rate_percent `{}` is not a percentage with at most 2 decimals",
                    config.tax_rate_percent
                )
            })?;
        let mut methods = BTreeMap::new();
        for (method, fees) in &config.shipping_methods {
            let parsed = if fees.get("*").is_some_and(|fee| {
                fee.trim_start_matches('0')
                    .trim_start_matches('.')
                    .trim_matches('0')
                    .is_empty()
            }) {
                Fees::Free
            } else {
                let mut per_currency = HashMap::new();
                for (code, amount) in fees {
                    let currency =
                        Currency::parse(code).map_err(|e| format!("shipping {method}: {e}"))?;
                    let fee = Money::parse(amount, currency)
                        .map_err(|e| format!("shipping {method} {code}: {e}"))?;
                    per_currency.insert(currency, fee);
                }
                Fees::PerCurrency(per_currency)
            };
            methods.insert(method.to_lowercase(), parsed);
        }
        let addressless = config
            .addressless_methods
            .iter()
            .map(|method| method.to_lowercase())
            .collect::<Vec<_>>();
        if let Some(unknown) = addressless.iter().find(|m| !methods.contains_key(*m)) {
            return Err(format!(
                "pricing.addressless_methods: `{unknown}` is not a shipping method"
            ));
        }
        let default_currency = Currency::parse(&config.default_currency)
            .map_err(|e| format!("pricing.default_currency: {e}"))?;
        Ok(Pricing {
            tax_rate_bp,
            methods,
            addressless,
            default_currency,
        })
    }

    /// The currency of an order that names none (without a catalogue).
    pub fn default_currency(&self) -> Currency {
        self.default_currency
    }

    /// The method's canonical (lower-case) name: `"STANDARD"` is `standard`.
    pub fn method_name(method: &str) -> String {
        method.trim().to_lowercase()
    }

    /// Whether an order shipped by `method` needs a shipping address (no
    /// method: nothing is shipped).
    pub fn needs_address(&self, method: Option<&str>) -> bool {
        method.is_some_and(|method| !self.addressless.contains(&Self::method_name(method)))
    }

    /// The charges of an order in `currency` shipped by `method` (none: no
    /// shipping fee). An unknown method, or one not offered in the currency,
    /// is a message for the `shipping_method` field.
    pub fn charges(&self, method: Option<&str>, currency: Currency) -> Result<Charges, String> {
        let shipping = match method {
            None => None,
            Some(method) => match self.methods.get(&Self::method_name(method)) {
                None => {
                    let known: Vec<&str> = self.methods.keys().map(String::as_str).collect();
                    return Err(format!("must be one of {}", known.join(", ")));
                }
                Some(Fees::Free) => Some(Money::zero(currency)),
                Some(Fees::PerCurrency(fees)) => Some(
                    *fees
                        .get(&currency)
                        .ok_or_else(|| format!("`{method}` is not offered in {currency}"))?,
                ),
            },
        };
        Ok(Charges {
            tax_rate_bp: self.tax_rate_bp,
            shipping,
            coupon: None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pricing() -> Pricing {
        let config: PricingConfig = serde_json::from_value(serde_json::json!({
            "tax_rate_percent": "8.25",
            "shipping_methods": {
                "standard": {"*": "0"},
                "express": {"USD": "15.00", "EUR": "14.00"},
                "digital": {"*": "0"}
            },
            "addressless_methods": ["Digital"],
            "default_currency": "USD"
        }))
        .unwrap();
        Pricing::from_config(&config).unwrap()
    }

    #[test]
    fn charges_follow_the_method_and_currency() {
        let usd = Currency::parse("USD").unwrap();
        let jpy = Currency::parse("JPY").unwrap();
        let p = pricing();
        assert_eq!(
            p.charges(None, usd).unwrap(),
            Charges {
                tax_rate_bp: 825,
                shipping: None,
                coupon: None,
            }
        );
        assert_eq!(
            p.charges(Some("standard"), jpy).unwrap().shipping,
            Some(Money::zero(jpy))
        );
        assert_eq!(
            p.charges(Some("express"), usd).unwrap().shipping,
            Some(Money::parse("15", usd).unwrap())
        );
        assert!(
            p.charges(Some("express"), jpy)
                .unwrap_err()
                .contains("not offered")
        );
        assert!(
            p.charges(Some("teleport"), usd)
                .unwrap_err()
                .contains("digital, express, standard")
        );
        assert_eq!(
            p.charges(Some("EXPRESS"), usd).unwrap().shipping,
            Some(Money::parse("15", usd).unwrap())
        );
    }

    #[test]
    fn only_addressless_methods_ship_without_an_address() {
        let p = pricing();
        assert!(p.needs_address(Some("standard")));
        assert!(p.needs_address(Some("STANDARD")));
        assert!(!p.needs_address(Some("DIGITAL")));
        assert!(!p.needs_address(None));
        assert_eq!(p.default_currency().code(), "USD");
    }

    #[test]
    fn tax_rates_are_percentages_with_two_decimals_at_most() {
        assert_eq!(crate::domain::money::percent_to_bp("8.25"), Some(825));
        assert_eq!(crate::domain::money::percent_to_bp("0"), Some(0));
        assert_eq!(crate::domain::money::percent_to_bp("20.5"), Some(2050));
        for bad in ["", "8.255", "-1", "abc", "101"] {
            assert_eq!(crate::domain::money::percent_to_bp(bad), None, "{bad}");
        }
    }
}
