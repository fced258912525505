//! Money: exact integer minor units with an ISO 4217 currency. Never a float.
//!
//! On the wire an amount is a decimal string (`"59.98"`) whose number of
//! decimals may not exceed the currency's minor unit (2 for USD, 0 for JPY,
//! 3 for KWD). All arithmetic is checked: an overflow is an error, not a wrap.

use std::fmt;

/// An ISO 4217 currency that has a minor unit (funds and metals are refused).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Currency {
    code: iso_currency::Currency,
    exponent: u32,
}

impl Currency {
    /// Parses an upper-case ISO 4217 alpha code.
    pub fn parse(code: &str) -> Result<Self, MoneyError> {
        let currency = iso_currency::Currency::from_code(code)
            .ok_or_else(|| MoneyError::UnknownCurrency(code.to_owned()))?;
        let exponent = currency
            .exponent()
            .ok_or_else(|| MoneyError::UnknownCurrency(code.to_owned()))?;
        Ok(Self {
            code: currency,
            exponent: u32::from(exponent),
        })
    }

    pub fn code(&self) -> &'static str {
        self.code.code()
    }

    /// Digits after the decimal point (2 for USD).
    pub fn exponent(&self) -> u32 {
        self.exponent
    }
}

impl fmt::Display for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MoneyError {
    #[error("`{0}` is not an ISO 4217 currency with a minor unit")]
    UnknownCurrency(String),
    #[error("must be a decimal string such as \"29.99\"")]
    NotADecimal,
    #[error("{currency} amounts have at most {exponent} decimal places")]
    TooPrecise { currency: Currency, exponent: u32 },
    #[error("amount is too large")]
    Overflow,
    #[error("amounts in different currencies ({0} and {1}) cannot be combined")]
    CurrencyMismatch(Currency, Currency),
}

/// A non-negative amount of money.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Money {
    minor: i64,
    currency: Currency,
}

/// The largest amount we accept: 10^15 minor units leaves room for quantities
/// and sums far below `i64::MAX` while exceeding any real order.
pub const MAX_MINOR: i64 = 1_000_000_000_000_000;

impl Money {
    pub fn zero(currency: Currency) -> Self {
        Self { minor: 0, currency }
    }

    pub fn from_minor(minor: i64, currency: Currency) -> Result<Self, MoneyError> {
        if (0..=MAX_MINOR).contains(&minor) {
            Ok(Self { minor, currency })
        } else {
            Err(MoneyError::Overflow)
        }
    }

    /// Parses a decimal string (`"29.99"`, `"5"`, `"0.5"`) in `currency`.
    pub fn parse(amount: &str, currency: Currency) -> Result<Self, MoneyError> {
        let (whole, fraction) = match amount.split_once('.') {
            Some((whole, fraction)) => (whole, Some(fraction)),
            None => (amount, None),
        };
        let all_digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
        if !all_digits(whole) || fraction.is_some_and(|f| !all_digits(f)) {
            return Err(MoneyError::NotADecimal);
        }
        let fraction = fraction.unwrap_or("");
        let exponent = currency.exponent();
        if fraction.len() > exponent as usize {
            return Err(MoneyError::TooPrecise { currency, exponent });
        }
        if whole.len() > 18 {
            return Err(MoneyError::Overflow);
        }
        let scale = 10_i64.pow(exponent);
        let whole: i64 = whole.parse().map_err(|_| MoneyError::Overflow)?;
        let padded = format!("{fraction:0<width$}", width = exponent as usize);
        let fraction: i64 = if padded.is_empty() {
            0
        } else {
            padded.parse().map_err(|_| MoneyError::NotADecimal)?
        };
        let minor = whole
            .checked_mul(scale)
            .and_then(|w| w.checked_add(fraction))
            .ok_or(MoneyError::Overflow)?;
        Self::from_minor(minor, currency)
    }

    pub fn minor(&self) -> i64 {
        self.minor
    }

    pub fn currency(&self) -> Currency {
        self.currency
    }

    pub fn checked_add(self, other: Money) -> Result<Money, MoneyError> {
        if self.currency != other.currency {
            return Err(MoneyError::CurrencyMismatch(self.currency, other.currency));
        }
        let minor = self
            .minor
            .checked_add(other.minor)
            .ok_or(MoneyError::Overflow)?;
        Self::from_minor(minor, self.currency)
    }

    /// `self - other`, floored at zero (a discount never makes a total negative).
    pub fn saturating_sub(self, other: Money) -> Result<Money, MoneyError> {
        if self.currency != other.currency {
            return Err(MoneyError::CurrencyMismatch(self.currency, other.currency));
        }
        Ok(Self {
            minor: (self.minor - other.minor).max(0),
            currency: self.currency,
        })
    }

    /// `self × rate`, the rate in basis points (1/100 of a percent, so 825
    /// is 8.25%), rounded half up to the currency's minor unit. Exact: the
    /// product is formed in 128-bit integers.
    pub fn apply_rate_bp(self, basis_points: u32) -> Result<Money, MoneyError> {
        let scaled = i128::from(self.minor) * i128::from(basis_points);
        let rounded = (scaled + 5_000) / 10_000;
        let minor = i64::try_from(rounded).map_err(|_| MoneyError::Overflow)?;
        Self::from_minor(minor, self.currency)
    }

    pub fn checked_mul(self, factor: u32) -> Result<Money, MoneyError> {
        let minor = self
            .minor
            .checked_mul(i64::from(factor))
            .ok_or(MoneyError::Overflow)?;
        Self::from_minor(minor, self.currency)
    }
}

/// The decimal string, with exactly the currency's number of decimals.
impl fmt::Display for Money {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let exponent = self.currency.exponent();
        if exponent == 0 {
            return write!(f, "{}", self.minor);
        }
        let scale = 10_i64.pow(exponent);
        write!(
            f,
            "{}.{:0width$}",
            self.minor / scale,
            self.minor % scale,
            width = exponent as usize
        )
    }
}

/// Stored and sent as `{"amount": "29.99", "currency": "USD"}`.
impl serde::Serialize for Money {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let mut state = serializer.serialize_struct("Money", 2)?;
        state.serialize_field("amount", &self.to_string())?;
        state.serialize_field("currency", self.currency.code())?;
        state.end()
    }
}

impl<'de> serde::Deserialize<'de> for Money {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(serde::Deserialize)]
        struct Raw {
            amount: String,
            currency: Currency,
        }
        let raw = Raw::deserialize(deserializer)?;
        Money::parse(&raw.amount, raw.currency).map_err(serde::de::Error::custom)
    }
}

impl serde::Serialize for Currency {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.code())
    }
}

impl<'de> serde::Deserialize<'de> for Currency {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let code = String::deserialize(deserializer)?;
        Currency::parse(&code).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn usd() -> Currency {
        Currency::parse("USD").unwrap()
    }

    #[test]
    fn parses_and_prints_decimal_strings() {
        let cases = [
            ("29.99", 2999, "29.99"),
            ("5", 500, "5.00"),
            ("0.5", 50, "0.50"),
            ("0", 0, "0.00"),
        ];
        for (input, minor, printed) in cases {
            let money = Money::parse(input, usd()).unwrap();
            assert_eq!(money.minor(), minor, "{input}");
            assert_eq!(money.to_string(), printed, "{input}");
        }
    }

    #[test]
    fn respects_each_currencys_minor_unit() {
        let jpy = Currency::parse("JPY").unwrap();
        assert_eq!(Money::parse("1500", jpy).unwrap().to_string(), "1500");
        assert!(matches!(
            Money::parse("1500.5", jpy),
            Err(MoneyError::TooPrecise { .. })
        ));
        let kwd = Currency::parse("KWD").unwrap();
        assert_eq!(Money::parse("1.234", kwd).unwrap().minor(), 1234);
        assert!(matches!(
            Money::parse("29.999", usd()),
            Err(MoneyError::TooPrecise { .. })
        ));
    }

    #[test]
    fn refuses_what_is_not_a_plain_decimal() {
        for input in [
            "", "-1", "+1", "1e3", "1.", ".5", "1,50", " 1", "NaN", "1.2.3",
        ] {
            assert_eq!(
                Money::parse(input, usd()),
                Err(MoneyError::NotADecimal),
                "{input:?}"
            );
        }
        assert_eq!(
            Money::parse("99999999999999999999", usd()),
            Err(MoneyError::Overflow)
        );
    }

    #[test]
    fn refuses_unknown_currencies_and_those_without_minor_units() {
        for code in ["usd", "XYZ", "XAU", ""] {
            assert!(Currency::parse(code).is_err(), "{code}");
        }
    }

    #[test]
    fn never_mixes_currencies() {
        let eur = Currency::parse("EUR").unwrap();
        let sum = Money::zero(usd()).checked_add(Money::zero(eur));
        assert!(matches!(sum, Err(MoneyError::CurrencyMismatch(..))));
    }

    #[test]
    fn rates_round_half_up_in_minor_units() {
        let m = |s: &str| Money::parse(s, usd()).unwrap();
        assert_eq!(m("64.98").apply_rate_bp(825).unwrap(), m("5.36")); // 5.36085
        assert_eq!(m("0.10").apply_rate_bp(5_000).unwrap(), m("0.05"));
        assert_eq!(m("0.01").apply_rate_bp(5_000).unwrap(), m("0.01")); // 0.005 rounds up
        assert_eq!(m("100.00").apply_rate_bp(0).unwrap(), m("0.00"));
        let jpy = Currency::parse("JPY").unwrap();
        assert_eq!(
            Money::parse("1999", jpy)
                .unwrap()
                .apply_rate_bp(1_000)
                .unwrap()
                .minor(),
            200
        );
    }

    proptest! {
        #[test]
        fn printing_then_parsing_is_the_identity(minor in 0..=MAX_MINOR) {
            let money = Money::from_minor(minor, usd()).unwrap();
            prop_assert_eq!(Money::parse(&money.to_string(), usd()).unwrap(), money);
        }
    }
}
