//! The one clock of both services.

use time::OffsetDateTime;

/// The current time in UTC at the database's precision (microseconds), so a
/// value answered now and the same value read back later are identical.
pub fn now() -> OffsetDateTime {
    let now = OffsetDateTime::now_utc();
    now.replace_nanosecond(now.nanosecond() / 1_000 * 1_000)
        .unwrap_or(now)
}
