//! The cursor of `GET /api/v1/orders`' pages.

use uuid::Uuid;

/// `next_cursor`: the sort key of a page's last order (opaque to clients),
/// written as 48 hex digits: the creation time in microseconds since the
/// epoch (16) and the order id (32). One unbroken hex word: a decimal
/// timestamp standing alone could pass the Luhn check and be refused as a
/// card number by the URL guard.
pub fn encode((at, id): (time::OffsetDateTime, Uuid)) -> String {
    let micros = at.unix_timestamp_nanos() / 1_000;
    // Orders are created after 1970 and before the year 294,000.
    let micros = u64::try_from(micros).unwrap_or_default();
    format!("{micros:016x}{}", id.simple())
}

pub(super) fn decode(cursor: &str) -> Result<(time::OffsetDateTime, Uuid), String> {
    let invalid = || "is not a cursor this service gave (pass next_cursor as it is)".to_owned();
    if cursor.len() != 48 || !cursor.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(invalid());
    }
    let (micros, id) = cursor.split_at(16);
    let micros = u64::from_str_radix(micros, 16).map_err(|_| invalid())?;
    let at = time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(micros) * 1_000)
        .map_err(|_| invalid())?;
    let id = Uuid::try_parse(id).map_err(|_| invalid())?;
    Ok((at, id))
}

#[cfg(test)]
mod tests {
    use super::{decode, encode};
    use proptest::prelude::*;

    proptest! {
        /// A cursor comes back as the key it was made from, and the URL
        /// guard never takes one for a card number (a decimal timestamp
        /// once did: 1796490152077995 passes the Luhn check).
        #[test]
        fn cursors_round_trip_and_are_never_card_numbers(
            micros in 0_i64..=253_402_300_799_000_000,
            bits in any::<u128>(),
        ) {
            let at = time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(micros) * 1_000)
                .map_err(|e| TestCaseError::fail(e.to_string()))?;
            let id = uuid::Uuid::from_u128(bits);
            let cursor = encode((at, id));
            prop_assert_eq!(decode(&cursor), Ok((at, id)));
            let query = format!("cursor={cursor}");
            prop_assert!(!platform::card_data::holds_card_number(&query));
        }
    }

    #[test]
    fn the_timestamp_that_once_looked_like_a_card_is_a_cursor() {
        let at =
            time::OffsetDateTime::from_unix_timestamp_nanos(1_796_490_152_077_995_000).unwrap();
        let id = uuid::Uuid::from_u128(0x01a2_4728_488d_77e7_bb4a_cbb4_d0f7_9e89);
        let cursor = encode((at, id));
        assert!(!platform::card_data::holds_card_number(&format!(
            "cursor={cursor}"
        )));
        assert!(platform::card_data::holds_card_number(
            "cursor=1796490152077995_01a2"
        ));
        for forged in [
            "",
            "nonsense",
            "12_notauuid",
            &cursor[1..],
            &format!("{cursor}0"),
        ] {
            assert!(decode(forged).is_err(), "{forged}");
        }
    }
}
