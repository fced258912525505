use super::*;

#[test]
fn a_decimal_string_is_plain_as_the_contract_says_a_number_may_use_an_exponent() {
    let read = |json: &str| serde_json::from_str::<Amount>(json).map(|a| a.to_string());
    assert_eq!(read(r#""12.50""#).unwrap(), "12.5");
    assert_eq!(read(r#""0.50""#).unwrap(), "0.5");
    for refused in [
        r#""1.25e1""#,
        r#""0012.50""#,
        r#""-1.00""#,
        r#""1.""#,
        r#"".5""#,
        r#""""#,
    ] {
        assert!(read(refused).is_err(), "{refused}");
    }
    // A JSON number is read from its literal text, exponent included.
    assert_eq!(read("1.25e1").unwrap(), "12.5");
    assert_eq!(read("29.99").unwrap(), "29.99");
}
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

#[test]
fn amounts_read_numbers_from_their_text() {
    let read = |json: &str| serde_json::from_str::<Amount>(json).map(|a| a.to_string());
    assert_eq!(read("29.99").unwrap(), "29.99");
    assert_eq!(read("\"29.99\"").unwrap(), "29.99");
    assert_eq!(read("2.999e1").unwrap(), "29.99");
    assert_eq!(read("1E2").unwrap(), "100");
    assert_eq!(read("5e-1").unwrap(), "0.5");
    assert_eq!(read("29.990").unwrap(), "29.99");
    assert_eq!(read("0.1").unwrap(), "0.1");
    for bad in [
        "-1", "007", "true", "null", "{}", "[1]", "\"1e\"", "\"\"", "\".5\"", "\"1.\"",
    ] {
        assert!(read(bad).is_err(), "{bad}");
    }
    // 0.1 + 0.2 as floats is 0.30000000000000004; as text it is exact.
    let amount = serde_json::from_str::<Amount>("0.30000000000000004").unwrap();
    assert!(matches!(
        amount.to_money(usd()),
        Err(MoneyError::TooPrecise { .. })
    ));
}

/// A JSON number (in any notation) and its decimal string give the same
/// minor units, for every currency exponent.
fn notations(minor: i64, exponent: u32) -> Vec<String> {
    let scale = 10_i64.pow(exponent);
    let plain = if exponent == 0 {
        minor.to_string()
    } else {
        format!(
            "{}.{:0width$}",
            minor / scale,
            minor % scale,
            width = exponent as usize
        )
    };
    let digits = minor.to_string();
    let padded = if plain.contains('.') {
        format!("{plain}000")
    } else {
        format!("{plain}.000")
    };
    vec![
        plain.clone(),
        format!("\"{plain}\""),
        format!("{digits}e-{exponent}"),
        format!("{digits}E-{exponent}"),
        padded.clone(),
        format!("\"{padded}\""),
    ]
}

proptest! {
    #[test]
    fn a_number_and_its_string_give_the_same_minor_units(
        minor in 0..=MAX_MINOR,
        code in prop::sample::select(vec!["JPY", "USD", "KWD"]),
    ) {
        let currency = Currency::parse(code).unwrap();
        for json in notations(minor, currency.exponent()) {
            let amount: Amount = serde_json::from_str(&json).unwrap();
            prop_assert_eq!(amount.to_money(currency).unwrap().minor(), minor, "{}", json);
        }
    }

    #[test]
    fn more_decimals_than_the_currency_has_are_refused(
        minor in 1..=1_000_000_000_i64,
        code in prop::sample::select(vec!["JPY", "USD", "KWD"]),
    ) {
        let currency = Currency::parse(code).unwrap();
        let exponent = currency.exponent() + 1;
        // `minor` tenths of the smallest unit, never a whole unit count.
        let minor = if minor % 10 == 0 { minor + 1 } else { minor };
        let text = format!("{minor}e-{exponent}");
        let amount: Amount = serde_json::from_str(&text).unwrap();
        let too_precise = matches!(amount.to_money(currency), Err(MoneyError::TooPrecise { .. }));
        prop_assert!(too_precise, "{} in {}", text, code);
    }
}

proptest! {
    #[test]
    fn printing_then_parsing_is_the_identity(minor in 0..=MAX_MINOR) {
        let money = Money::from_minor(minor, usd()).unwrap();
        prop_assert_eq!(Money::parse(&money.to_string(), usd()).unwrap(), money);
    }
}
