//! Small domain values that parse, not validate: holding one proves it is valid.

use serde::{Deserialize, Deserializer, Serialize};

/// A rule a piece of input broke, with the field it concerns (relative to the
/// value being parsed; the caller prefixes its own path).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    pub field: String,
    pub message: String,
}

impl Violation {
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            message: message.into(),
        }
    }
}

/// Trimmed, non-empty, at most `max` characters, no control characters.
pub fn text(value: &str, max: usize) -> Result<String, String> {
    let value = value.trim();
    if value.is_empty() {
        return Err("must not be empty".to_owned());
    }
    if value.chars().count() > max {
        return Err(format!("must be at most {max} characters"));
    }
    if value.chars().any(char::is_control) {
        return Err("must not contain control characters".to_owned());
    }
    Ok(value.to_owned())
}

/// Like [`text`] for an optional field; an empty string counts as absent.
pub fn optional_text(value: Option<&str>, max: usize) -> Result<Option<String>, String> {
    match value.map(str::trim) {
        None | Some("") => Ok(None),
        Some(value) => text(value, max).map(Some),
    }
}

macro_rules! identifier {
    ($(#[$doc:meta])* $name:ident, $max:expr) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            /// 1 to
            #[doc = stringify!($max)]
            /// printable characters without whitespace.
            pub fn parse(value: &str) -> Result<Self, String> {
                if value.is_empty() {
                    return Err("must not be empty".to_owned());
                }
                if value.chars().count() > $max {
                    return Err(format!("must be at most {} characters", $max));
                }
                if value.chars().any(|c| c.is_control() || c.is_whitespace()) {
                    return Err("must not contain whitespace or control characters".to_owned());
                }
                Ok(Self(value.to_owned()))
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let value = String::deserialize(deserializer)?;
                Self::parse(&value).map_err(serde::de::Error::custom)
            }
        }
    };
}

identifier!(
    /// The owner of an order: the `sub` of their token.
    UserId,
    128
);
identifier!(
    /// A product of the catalogue (an external reference).
    ProductId,
    64
);
identifier!(
    /// A variant of a catalogue product (size, colour, …).
    VariantId,
    64
);

/// How many units of a product: 1 to [`Quantity::MAX`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(transparent)]
pub struct Quantity(u32);

impl Quantity {
    pub const MAX: u32 = 10_000;

    pub fn parse(value: i64) -> Result<Self, String> {
        match u32::try_from(value) {
            Ok(value @ 1..=Self::MAX) => Ok(Self(value)),
            _ if value < 1 => Err("must be at least 1".to_owned()),
            _ => Err(format!("must be at most {}", Self::MAX)),
        }
    }

    pub fn get(self) -> u32 {
        self.0
    }
}

impl<'de> Deserialize<'de> for Quantity {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Self::parse(i64::deserialize(deserializer)?).map_err(serde::de::Error::custom)
    }
}

/// A postal address (shipping or billing).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Address {
    pub first_name: String,
    pub last_name: String,
    pub line1: String,
    pub line2: Option<String>,
    pub city: String,
    pub region: Option<String>,
    pub postal_code: String,
    /// ISO 3166-1 alpha-2, upper case (an alpha-3 input is converted).
    pub country: String,
    pub phone: Option<String>,
    pub email: Option<String>,
}

/// What the customer said of an order beyond its lines: where it goes and
/// how they pay. Addresses and notes are the order's personal data.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderDetails {
    /// None for what is not shipped (digital goods).
    pub shipping_address: Option<Address>,
    pub billing_address: Option<Address>,
    pub shipping_method: Option<String>,
    pub notes: Option<String>,
    /// How the customer pays, as they name it (`CREDIT_CARD`, `card`).
    pub payment_method: Option<String>,
}

/// Unvalidated address input, as a client sends it.
#[derive(Debug, Clone, Default)]
pub struct AddressInput<'a> {
    pub first_name: &'a str,
    pub last_name: &'a str,
    pub line1: &'a str,
    pub line2: Option<&'a str>,
    pub city: &'a str,
    pub region: Option<&'a str>,
    pub postal_code: &'a str,
    pub country: &'a str,
    pub phone: Option<&'a str>,
    pub email: Option<&'a str>,
}

impl Address {
    /// Validates every field, reporting all violations at once.
    pub fn parse(input: &AddressInput<'_>) -> Result<Address, Vec<Violation>> {
        let mut violations = Vec::new();
        let mut required = |field: &str, value: &str, max: usize| match text(value, max) {
            Ok(value) => value,
            Err(message) => {
                violations.push(Violation::new(field, message));
                String::new()
            }
        };
        let first_name = required("first_name", input.first_name, 100);
        let last_name = required("last_name", input.last_name, 100);
        let line1 = required("line1", input.line1, 200);
        let city = required("city", input.city, 100);
        let postal_code = required("postal_code", input.postal_code, 20);
        let mut optional = |field: &str, value: Option<&str>, max: usize| {
            optional_text(value, max).unwrap_or_else(|message| {
                violations.push(Violation::new(field, message));
                None
            })
        };
        let line2 = optional("line2", input.line2, 200);
        let region = optional("region", input.region, 100);
        let phone = optional("phone", input.phone, 32);
        let email = optional("email", input.email, 254);
        let country = country_alpha2(input.country.trim());
        if country.is_none() {
            violations.push(Violation::new(
                "country",
                "must be an ISO 3166-1 alpha-2 or alpha-3 code such as \"US\" or \"USA\"",
            ));
        }
        if let Some(email) = &email
            && !is_plausible_email(email)
        {
            violations.push(Violation::new("email", "must be an email address"));
        }
        if !violations.is_empty() {
            return Err(violations);
        }
        Ok(Address {
            first_name,
            last_name,
            line1,
            line2,
            city,
            region,
            postal_code,
            country: country.unwrap_or_default().to_owned(),
            phone,
            email,
        })
    }
}

/// The alpha-2 code of an upper-case ISO 3166-1 alpha-2 or alpha-3 code.
fn country_alpha2(code: &str) -> Option<&'static str> {
    if !code.bytes().all(|b| b.is_ascii_uppercase()) {
        return None;
    }
    let country = match code.len() {
        2 => isocountry::CountryCode::for_alpha2(code).ok()?,
        3 => isocountry::CountryCode::for_alpha3(code).ok()?,
        _ => return None,
    };
    Some(country.alpha2())
}

fn is_plausible_email(email: &str) -> bool {
    match email.split_once('@') {
        Some((local, domain)) => {
            !local.is_empty()
                && domain.contains('.')
                && !domain.starts_with('.')
                && !domain.ends_with('.')
        }
        None => false,
    }
}

/// A human-readable, unique order number such as `ORD-7K3M-9QX2`.
///
/// It is a bijection of a database sequence value: a 4-round Feistel network
/// over 40 bits scrambles consecutive numbers (so order numbers reveal neither
/// volume nor neighbours) without ever colliding, and Crockford base32 spells
/// the result without ambiguous letters.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct OrderNumber(String);

const CROCKFORD: &[u8; 32] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";
const HALF_BITS: u32 = 20;
const HALF_MASK: u64 = (1 << HALF_BITS) - 1;
const ROUND_KEYS: [u64; 4] = [0x9E37_79B9, 0x7F4A_7C15, 0xF39C_C060, 0x5CED_C834];

impl OrderNumber {
    /// Numbers below 2^40 map to distinct order numbers.
    pub const CAPACITY: u64 = 1 << (2 * HALF_BITS);

    pub fn from_sequence(value: u64) -> Option<OrderNumber> {
        if value >= Self::CAPACITY {
            return None;
        }
        let (mut left, mut right) = (value >> HALF_BITS, value & HALF_MASK);
        for key in ROUND_KEYS {
            let mixed =
                (right.wrapping_mul(0x2545_F491).wrapping_add(key) ^ (right >> 7)) & HALF_MASK;
            (left, right) = (right, left ^ mixed);
        }
        let scrambled = (left << HALF_BITS) | right;
        let mut code = String::with_capacity(13);
        code.push_str("ORD-");
        for index in 0..8 {
            if index == 4 {
                code.push('-');
            }
            let shift = 35 - 5 * index;
            code.push(char::from(CROCKFORD[((scrambled >> shift) & 31) as usize]));
        }
        Some(OrderNumber(code))
    }

    /// Re-reads a stored order number.
    pub fn parse(value: &str) -> Result<OrderNumber, String> {
        let valid = value.len() == 13
            && value.starts_with("ORD-")
            && value.as_bytes()[8] == b'-'
            && value
                .bytes()
                .enumerate()
                .filter(|(i, _)| *i >= 4 && *i != 8)
                .all(|(_, b)| CROCKFORD.contains(&b));
        if valid {
            Ok(OrderNumber(value.to_owned()))
        } else {
            Err(format!("`{value}` is not an order number"))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for OrderNumber {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// An order's identity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct OrderId(pub uuid::Uuid);

impl std::fmt::Display for OrderId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn order_numbers_are_distinct_and_well_formed() {
        let mut seen = HashSet::new();
        for value in (0..50_000).chain(OrderNumber::CAPACITY - 1000..OrderNumber::CAPACITY) {
            let number = OrderNumber::from_sequence(value).unwrap();
            assert_eq!(OrderNumber::parse(number.as_str()), Ok(number.clone()));
            assert!(seen.insert(number), "collision at {value}");
        }
        assert_eq!(OrderNumber::from_sequence(OrderNumber::CAPACITY), None);
    }

    #[test]
    fn consecutive_order_numbers_look_unrelated() {
        let a = OrderNumber::from_sequence(1000).unwrap();
        let b = OrderNumber::from_sequence(1001).unwrap();
        let shared_prefix =
            a.0.chars()
                .zip(b.0.chars())
                .take_while(|(x, y)| x == y)
                .count();
        assert!(shared_prefix < 8, "{a} and {b}");
    }

    #[test]
    fn quantities_are_bounded() {
        assert!(Quantity::parse(0).is_err());
        assert!(Quantity::parse(-3).is_err());
        assert_eq!(Quantity::parse(1).map(Quantity::get), Ok(1));
        assert!(Quantity::parse(i64::from(Quantity::MAX) + 1).is_err());
    }

    #[test]
    fn countries_are_real_iso_3166_codes() {
        let with_country = |country| AddressInput {
            first_name: "Ada",
            last_name: "Lovelace",
            line1: "1 Main St",
            city: "London",
            postal_code: "SW1",
            country,
            ..AddressInput::default()
        };
        for (valid, alpha2) in [
            ("GB", "GB"),
            ("US", "US"),
            ("DE", "DE"),
            ("USA", "US"),
            ("GBR", "GB"),
            ("JPN", "JP"),
        ] {
            let address = Address::parse(&with_country(valid));
            assert_eq!(address.map(|a| a.country), Ok(alpha2.to_owned()), "{valid}");
        }
        for invalid in ["UK", "XX", "gb", "usa", "XXX", "U", "USAA", ""] {
            assert!(Address::parse(&with_country(invalid)).is_err(), "{invalid}");
        }
    }

    #[test]
    fn an_address_reports_every_bad_field() {
        let input = AddressInput {
            first_name: "Ada",
            country: "UK",
            email: Some("not-an-email"),
            ..AddressInput::default()
        };
        let fields: Vec<String> = Address::parse(&input)
            .unwrap_err()
            .into_iter()
            .map(|v| v.field)
            .collect();
        assert_eq!(
            fields,
            [
                "last_name",
                "line1",
                "city",
                "postal_code",
                "country",
                "email"
            ]
        );
    }
}
