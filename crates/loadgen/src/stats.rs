//! Latency histograms and what is reported of them.

use std::time::Duration;

use hdrhistogram::Histogram;
use serde_json::json;

/// Microsecond latencies, 1 µs to 60 s, 3 significant figures.
pub fn histogram() -> anyhow::Result<Histogram<u64>> {
    Ok(Histogram::new_with_bounds(1, 60_000_000, 3)?)
}

pub fn record(histogram: &mut Histogram<u64>, latency: Duration) {
    let micros = u64::try_from(latency.as_micros()).unwrap_or(u64::MAX);
    histogram.saturating_record(micros.max(1));
}

fn ms(micros: u64) -> f64 {
    (micros as f64 / 10.0).round() / 100.0
}

/// The summary every result line carries.
pub fn summary(histogram: &Histogram<u64>, seconds: f64, errors: u64) -> serde_json::Value {
    let count = histogram.len();
    json!({
        "requests": count,
        "errors": errors,
        "seconds": (seconds * 100.0).round() / 100.0,
        "throughput": per_second(count, seconds),
        "p50_ms": ms(histogram.value_at_quantile(0.50)),
        "p90_ms": ms(histogram.value_at_quantile(0.90)),
        "p99_ms": ms(histogram.value_at_quantile(0.99)),
        "max_ms": ms(histogram.max()),
    })
}

/// `count` per second over `seconds`, to a tenth (0 for no time).
pub fn per_second(count: u64, seconds: f64) -> f64 {
    if seconds > 0.0 {
        (count as f64 / seconds * 10.0).round() / 10.0
    } else {
        0.0
    }
}

/// Merges `extra` fields into a summary.
pub fn with(mut summary: serde_json::Value, extra: serde_json::Value) -> serde_json::Value {
    if let (Some(target), serde_json::Value::Object(extra)) = (summary.as_object_mut(), extra) {
        target.extend(extra);
    }
    summary
}
