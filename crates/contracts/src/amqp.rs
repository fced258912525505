//! The AMQP 0-9-1 mapping of an event, in one place.
//!
//! CloudEvents has no official AMQP 0-9-1 binding, so events travel in
//! *structured mode*: the body is the whole CloudEvent as JSON
//! (`application/cloudevents+json`). The message properties repeat what
//! brokers and tools can use (`message_id` = event id, persistent delivery,
//! the event type, a `traceparent` header) but are a convenience: a consumer
//! reads the truth from the body.

use crate::cloud::{self, EnvelopeError, EventMeta};

/// Content type of a structured-mode CloudEvent.
pub const CONTENT_TYPE: &str = "application/cloudevents+json";
/// AMQP header carrying the W3C trace context.
pub const TRACEPARENT_HEADER: &str = "traceparent";

/// A message ready to publish, independent of the AMQP client library.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutgoingMessage {
    /// The event type (`order.created`): topic exchanges route on it.
    pub routing_key: String,
    pub body: Vec<u8>,
    /// The CloudEvent id, for broker-side and consumer-side deduplication.
    pub message_id: String,
    /// Milliseconds since the epoch of the event's `time`.
    pub timestamp: u64,
    pub traceparent: Option<String>,
    /// Always `application/cloudevents+json`.
    pub content_type: &'static str,
    /// Delivery mode 2: written to disk by the broker.
    pub persistent: bool,
}

/// Maps an event to its AMQP message. Its data is already JSON text (as
/// stored in an outbox) and is not decoded: the envelope's
/// attributes are written around the stored bytes, so an event is encoded
/// once, when it is recorded. `data_json` must be one JSON value (a `json`
/// or `jsonb` column's text is).
pub fn to_message(meta: &EventMeta, data_json: &str) -> Result<OutgoingMessage, EnvelopeError> {
    Ok(OutgoingMessage {
        routing_key: meta.event_type.clone(),
        body: cloud::structured_json(meta, data_json)?,
        message_id: meta.id.to_string(),
        timestamp: u64::try_from(meta.time.unix_timestamp_nanos() / 1_000_000).unwrap_or(0),
        traceparent: meta.traceparent.clone(),
        content_type: CONTENT_TYPE,
        persistent: true,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::payment::{PaymentEventType, SOURCE};
    use uuid::Uuid;

    #[test]
    fn a_message_carries_the_event_in_structured_mode() {
        let meta = EventMeta {
            id: Uuid::now_v7(),
            source: SOURCE.to_owned(),
            event_type: PaymentEventType::Successful.as_str().to_owned(),
            subject: Uuid::now_v7().to_string(),
            time: time::macros::datetime!(2026-11-22 10:00 UTC),
            data_schema: None,
            sequence: Some(1),
            traceparent: Some("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01".into()),
        };
        let message = to_message(&meta, r#"{"amount": "1.00"}"#).unwrap();
        assert_eq!(message.routing_key, "payment.successful");
        assert_eq!(message.message_id, meta.id.to_string());
        assert!(message.persistent);
        assert_eq!(message.traceparent, meta.traceparent);
        let (parsed, data): (EventMeta, serde_json::Value) = cloud::parse(&message.body).unwrap();
        assert_eq!(parsed, meta);
        assert_eq!(data["amount"], "1.00");
    }

    #[test]
    fn the_raw_envelope_says_what_the_sdk_envelope_says() {
        let meta = EventMeta {
            id: Uuid::now_v7(),
            source: SOURCE.to_owned(),
            event_type: PaymentEventType::Successful.as_str().to_owned(),
            subject: Uuid::now_v7().to_string(),
            time: time::macros::datetime!(2026-11-22 10:00:00.123456 UTC),
            data_schema: Some(
                "https://schemas.orders.example/events/payment.successful.v1.json".into(),
            ),
            sequence: Some(7),
            traceparent: Some("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01".into()),
        };
        let data =
            serde_json::json!({"id": "p1", "amount": "10.00", "nested": {"a": [1, 2, "x\"y"]}});
        let via_sdk = cloud::to_json(&cloud::build(&meta, &data).unwrap()).unwrap();
        let raw = to_message(&meta, &data.to_string()).unwrap();
        let (a, b): (serde_json::Value, serde_json::Value) = (
            serde_json::from_slice(&via_sdk).unwrap(),
            serde_json::from_slice(&raw.body).unwrap(),
        );
        for field in [
            "specversion",
            "id",
            "source",
            "type",
            "subject",
            "datacontenttype",
            "dataschema",
            "sequence",
            "traceparent",
            "data",
        ] {
            assert_eq!(a[field], b[field], "{field}");
        }
        // The same instant, whichever RFC 3339 spelling.
        let (parsed_a, _): (cloud::EventMeta, serde_json::Value) = cloud::parse(&via_sdk).unwrap();
        let (parsed_b, data_b): (cloud::EventMeta, serde_json::Value) =
            cloud::parse(&raw.body).unwrap();
        assert_eq!(parsed_a, parsed_b);
        assert_eq!(data_b, data);
        assert_eq!(
            (raw.routing_key, raw.message_id),
            (meta.event_type.clone(), meta.id.to_string())
        );
    }
}
