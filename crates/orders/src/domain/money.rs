//! Money is part of the shared contract (see `contracts::money`); rates
//! written as percentages are read here, as basis points.

pub use contracts::money::*;

/// `"8.25"` → 825 basis points; at most two decimals, at most 100%.
pub(super) fn percent_to_bp(percent: &str) -> Option<u32> {
    let (whole, fraction) = percent.split_once('.').unwrap_or((percent, ""));
    if whole.is_empty()
        || fraction.len() > 2
        || !whole
            .bytes()
            .chain(fraction.bytes())
            .all(|b| b.is_ascii_digit())
    {
        return None;
    }
    let bp = whole.parse::<u32>().ok()?.checked_mul(100)?
        + format!("{fraction:0<2}").parse::<u32>().ok()?;
    (bp <= 10_000).then_some(bp)
}
