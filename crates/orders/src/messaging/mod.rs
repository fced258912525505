//! Orders' side of the payment choreography:
//! - [`dispatcher`]: sends durable payment requests to payments over HTTP;
//! - [`payment_events`]: consumes `payment.*` and updates orders.
//!
//! Publishing `order.*` is the shared outbox relay over `orders.events` (see
//! [`OUTBOX`]).

pub mod dispatcher;
pub mod payment_events;

use platform::relay::OutboxSource;

/// Where orders' outbox is: the event store itself.
pub const OUTBOX: OutboxSource = OutboxSource {
    name: "orders",
    notify_channel: "orders_outbox",
    select_unpublished: "SELECT position, id, order_id::text AS subject, sequence, event_type, \
        snapshot AS data, traceparent, occurred_at FROM orders.events \
        WHERE published_at IS NULL ORDER BY position LIMIT $1",
    mark_published: "UPDATE orders.events SET published_at = now() WHERE position = ANY($1)",
    backlog: "SELECT count(*)::int8 AS backlog, \
        COALESCE(EXTRACT(EPOCH FROM now() - min(occurred_at)), 0)::float8 AS oldest \
        FROM orders.events WHERE published_at IS NULL",
    source: contracts::order::SOURCE,
    data_schema: schema_of,
};

fn schema_of(event_type: &str) -> Option<String> {
    contracts::order::OrderEventType::parse(event_type).map(|t| t.data_schema())
}
