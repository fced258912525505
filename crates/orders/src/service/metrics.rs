//! The business metrics of orders.

use crate::domain::{Order, OrderStatus};

/// `orders_created_total` and `order_value` (in major units of the currency:
/// an observation, never money arithmetic).
pub(super) fn record_created(order: &Order) {
    let currency = order.currency.code();
    metrics::counter!("orders_created_total", "currency" => currency).increment(1);
    let scale = 10_f64.powi(i32::try_from(order.currency.exponent()).unwrap_or(2));
    metrics::histogram!("order_value", "currency" => currency)
        .record(order.totals.total.minor() as f64 / scale);
}

/// `order_status_transitions_total{from,to}` and `orders_cancelled_total`.
pub(super) fn record_transition(before: OrderStatus, after: &Order) {
    if before == after.status {
        return;
    }
    metrics::counter!(
        "order_status_transitions_total",
        "from" => before.as_str(),
        "to" => after.status.as_str()
    )
    .increment(1);
    if after.status == OrderStatus::Cancelled {
        metrics::counter!("orders_cancelled_total").increment(1);
    }
}
