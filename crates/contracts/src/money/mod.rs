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

/// An amount as a client sent it: a decimal string (`"29.99"`) or a JSON
/// number (`29.99`, as the source documents write it). A number is kept as
/// its literal text and read exactly, never through a float; exponents
/// (`2.999e1`) are shifted in the text. Turned into [`Money`] once the
/// currency is known, so "more decimals than the currency has" is an error
/// of the currency, not of the syntax.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Amount {
    /// A plain decimal: digits, at most one `.`, no sign, no exponent.
    decimal: String,
}

impl Amount {
    /// Reads the literal text of a JSON string's content or of a JSON number.
    pub fn parse(text: &str) -> Result<Amount, MoneyError> {
        plain_decimal(text)
            .map(|decimal| Amount { decimal })
            .ok_or(MoneyError::NotADecimal)
    }

    /// The amount in `currency`: too many decimals is [`MoneyError::TooPrecise`].
    pub fn to_money(&self, currency: Currency) -> Result<Money, MoneyError> {
        Money::parse(&self.decimal, currency)
    }

    pub fn as_str(&self) -> &str {
        &self.decimal
    }
}

/// `"29.99"` stays; `"2.999e1"` becomes `"29.99"`, `"1E2"` `"100"`; a sign,
/// a leading `.` or a trailing `.` is refused. Trailing zeros after the
/// point are dropped (`"29.990"` is 29.99 in any currency).
fn plain_decimal(text: &str) -> Option<String> {
    let (mantissa, exponent) = match text.find(['e', 'E']) {
        Some(at) => {
            let exponent = &text[at + 1..];
            let digits = exponent.strip_prefix(['+', '-']).unwrap_or(exponent);
            if digits.is_empty() || digits.len() > 4 || !digits.bytes().all(|b| b.is_ascii_digit())
            {
                return None;
            }
            (&text[..at], exponent.parse::<i32>().ok()?)
        }
        None => (text, 0),
    };
    let (whole, fraction) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    let all_digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    if whole.is_empty()
        || !all_digits(whole)
        || !all_digits(fraction)
        || (mantissa.contains('.') && fraction.is_empty())
    {
        return None;
    }
    // The digits without the point, and where the point goes after shifting.
    let digits = format!("{whole}{fraction}");
    let point = i64::try_from(whole.len()).ok()? + i64::from(exponent);
    let (whole, fraction) = if point <= 0 {
        let zeros = usize::try_from(-point).ok()?;
        ("0".to_owned(), format!("{}{digits}", "0".repeat(zeros)))
    } else {
        let point = usize::try_from(point).ok()?;
        if point >= digits.len() {
            (
                format!("{digits}{}", "0".repeat(point - digits.len())),
                String::new(),
            )
        } else {
            (digits[..point].to_owned(), digits[point..].to_owned())
        }
    };
    let whole = whole.trim_start_matches('0');
    let whole = if whole.is_empty() { "0" } else { whole };
    let fraction = fraction.trim_end_matches('0');
    Some(if fraction.is_empty() {
        whole.to_owned()
    } else {
        format!("{whole}.{fraction}")
    })
}

/// `^(0|[1-9][0-9]{0,14})(\.[0-9]{1,3})?$`, the pattern the contracts
/// publish for a decimal string (more decimals than the currency allows are
/// the currency's error, reported later).
fn is_plain_decimal_string(text: &str) -> bool {
    let (whole, fraction) = match text.split_once('.') {
        Some((whole, fraction)) => (whole, Some(fraction)),
        None => (text, None),
    };
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    digits(whole)
        && whole.len() <= 15
        && (whole == "0" || !whole.starts_with('0'))
        && fraction.is_none_or(digits)
}

impl fmt::Display for Amount {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.decimal)
    }
}

/// From a JSON string or number, the number read from its literal text
/// (which needs serde_json's `raw_value`: the body must be parsed from
/// text, as every request body is).
impl<'de> serde::Deserialize<'de> for Amount {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        use serde::de::Error;
        let raw = Box::<serde_json::value::RawValue>::deserialize(deserializer)?;
        let text = raw.get().trim();
        let literal = if text.starts_with('"') {
            let string = serde_json::from_str::<String>(text).map_err(D::Error::custom)?;
            // A string is a plain decimal, as the contract's pattern says:
            // no exponent, no leading zeros ("0012.50"), no sign.
            if !is_plain_decimal_string(&string) {
                return Err(D::Error::custom(
                    "must be a decimal string such as \"29.99\" (digits, at most one point, no exponent or leading zeros)",
                ));
            }
            string
        } else if text.starts_with(|c: char| c.is_ascii_digit() || c == '-') {
            text.to_owned()
        } else {
            return Err(D::Error::custom(
                "must be a decimal string such as \"29.99\" or a number such as 29.99",
            ));
        };
        Amount::parse(&literal).map_err(|_| {
            D::Error::custom("must be a non-negative decimal such as \"29.99\" or 29.99")
        })
    }
}

impl serde::Serialize for Amount {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.decimal)
    }
}

impl utoipa::PartialSchema for Amount {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        use utoipa::openapi::schema::{ObjectBuilder, OneOfBuilder, Type};
        OneOfBuilder::new()
            .item(
                ObjectBuilder::new()
                    .schema_type(Type::String)
                    .pattern(Some("^(0|[1-9][0-9]{0,14})(\\.[0-9]{1,3})?$"))
                    .examples(["29.99"]),
            )
            .item(
                ObjectBuilder::new()
                    .schema_type(Type::Number)
                    .minimum(Some(0))
                    .examples([29.99]),
            )
            .description(Some(
                "A decimal string (\"29.99\") or a JSON number (29.99), read exactly from its text, \
                 with at most the currency's decimals.",
            ))
            .into()
    }
}

impl utoipa::ToSchema for Amount {}

#[cfg(test)]
mod tests;
