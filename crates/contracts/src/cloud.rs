//! The CloudEvents envelope: one builder and one parser for every event.
//!
//! Attributes: `id`, `source`, `type`, `subject` (the order id), `time`,
//! `datacontenttype` (`application/json`), `dataschema`, and the extensions
//! `sequence` (per-order, gap-free, zero-padded to 10 digits because the
//! CloudEvents sequence extension compares as a string) and `traceparent`
//! (W3C trace context).

use cloudevents::{AttributesReader, Data, Event, EventBuilder, EventBuilderV10};
use serde::{Serialize, de::DeserializeOwned};
use time::{OffsetDateTime, format_description::well_known::Rfc3339};
use uuid::Uuid;

/// Width of the zero-padded `sequence` extension.
pub const SEQUENCE_WIDTH: usize = 10;

/// The envelope attributes of an event, independent of its data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventMeta {
    pub id: Uuid,
    pub source: String,
    pub event_type: String,
    pub subject: String,
    pub time: OffsetDateTime,
    pub data_schema: Option<String>,
    pub sequence: Option<u64>,
    pub traceparent: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum EnvelopeError {
    #[error("invalid CloudEvent: {0}")]
    Invalid(String),
    #[error("the event's data does not match its type: {0}")]
    Data(#[from] serde_json::Error),
}

fn invalid(error: impl std::fmt::Display) -> EnvelopeError {
    EnvelopeError::Invalid(error.to_string())
}

/// Builds a CloudEvent carrying `data` as JSON.
pub fn build<T: Serialize>(meta: &EventMeta, data: &T) -> Result<Event, EnvelopeError> {
    let time = meta.time.format(&Rfc3339).map_err(invalid)?;
    let data = serde_json::to_value(data)?;
    let mut builder = EventBuilderV10::new()
        .id(meta.id.to_string())
        .source(meta.source.as_str())
        .ty(meta.event_type.as_str())
        .subject(meta.subject.as_str())
        .time(time);
    builder = match &meta.data_schema {
        Some(schema) => builder.data_with_schema("application/json", schema.as_str(), data),
        None => builder.data("application/json", data),
    };
    if let Some(sequence) = meta.sequence {
        builder = builder.extension("sequence", format!("{sequence:0SEQUENCE_WIDTH$}"));
    }
    if let Some(traceparent) = &meta.traceparent {
        builder = builder.extension("traceparent", traceparent.as_str());
    }
    builder.build().map_err(invalid)
}

/// The structured-mode JSON of an event whose data is JSON text: the
/// attributes serialized, `data` spliced in as it is.
pub fn structured_json(meta: &EventMeta, data_json: &str) -> Result<Vec<u8>, EnvelopeError> {
    #[derive(Serialize)]
    struct Attributes<'a> {
        specversion: &'static str,
        id: String,
        source: &'a str,
        #[serde(rename = "type")]
        event_type: &'a str,
        subject: &'a str,
        time: String,
        datacontenttype: &'static str,
        #[serde(skip_serializing_if = "Option::is_none")]
        dataschema: Option<&'a str>,
        #[serde(skip_serializing_if = "Option::is_none")]
        sequence: Option<String>,
        #[serde(skip_serializing_if = "Option::is_none")]
        traceparent: Option<&'a str>,
    }
    let attributes = Attributes {
        specversion: "1.0",
        id: meta.id.to_string(),
        source: &meta.source,
        event_type: &meta.event_type,
        subject: &meta.subject,
        time: meta.time.format(&Rfc3339).map_err(invalid)?,
        datacontenttype: "application/json",
        dataschema: meta.data_schema.as_deref(),
        sequence: meta
            .sequence
            .map(|sequence| format!("{sequence:0SEQUENCE_WIDTH$}")),
        traceparent: meta.traceparent.as_deref(),
    };
    let mut body = Vec::with_capacity(data_json.len() + 512);
    serde_json::to_writer(&mut body, &attributes)?;
    // `{…attributes}` becomes `{…attributes,"data":<data>}`.
    body.pop();
    body.extend_from_slice(b",\"data\":");
    body.extend_from_slice(data_json.trim().as_bytes());
    body.push(b'}');
    Ok(body)
}

/// The structured-mode JSON of `event` (`application/cloudevents+json`).
pub fn to_json(event: &Event) -> Result<Vec<u8>, EnvelopeError> {
    Ok(serde_json::to_vec(event)?)
}

/// Parses structured-mode JSON into its envelope and typed data.
pub fn parse<T: DeserializeOwned>(body: &[u8]) -> Result<(EventMeta, T), EnvelopeError> {
    let event: Event = serde_json::from_slice(body)?;
    let time = event
        .time()
        .ok_or_else(|| invalid("`time` is missing"))?
        .to_rfc3339();
    let time = OffsetDateTime::parse(&time, &Rfc3339).map_err(invalid)?;
    let id = Uuid::parse_str(event.id()).map_err(|e| invalid(format!("`id`: {e}")))?;
    let extension = |name: &str| event.extension(name).map(ToString::to_string);
    let sequence = extension("sequence")
        .map(|s| {
            s.parse::<u64>()
                .map_err(|e| invalid(format!("`sequence`: {e}")))
        })
        .transpose()?;
    let meta = EventMeta {
        id,
        source: event.source().to_string(),
        event_type: event.ty().to_owned(),
        subject: event
            .subject()
            .ok_or_else(|| invalid("`subject` is missing"))?
            .to_owned(),
        time,
        data_schema: event.dataschema().map(ToString::to_string),
        sequence,
        traceparent: extension("traceparent"),
    };
    let data = match event.data() {
        Some(Data::Json(value)) => serde_json::from_value(value.clone())?,
        Some(Data::String(text)) => serde_json::from_str(text)?,
        Some(Data::Binary(bytes)) => serde_json::from_slice(bytes)?,
        None => return Err(invalid("`data` is missing")),
    };
    Ok((meta, data))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::order::{OrderEventType, SOURCE};

    #[derive(Debug, PartialEq, serde::Serialize, serde::Deserialize)]
    struct Payload {
        total: String,
    }

    fn meta() -> EventMeta {
        EventMeta {
            id: Uuid::now_v7(),
            source: SOURCE.to_owned(),
            event_type: OrderEventType::Paid.as_str().to_owned(),
            subject: Uuid::now_v7().to_string(),
            time: time::macros::datetime!(2026-11-22 10:00:00.123 UTC),
            data_schema: Some(OrderEventType::Paid.data_schema()),
            sequence: Some(2),
            traceparent: Some("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01".into()),
        }
    }

    #[test]
    fn an_event_survives_the_round_trip() {
        let meta = meta();
        let data = Payload {
            total: "59.98".into(),
        };
        let json = to_json(&build(&meta, &data).unwrap()).unwrap();
        let (parsed, parsed_data): (EventMeta, Payload) = parse(&json).unwrap();
        assert_eq!(parsed, meta);
        assert_eq!(parsed_data, data);
    }

    #[test]
    fn the_envelope_is_structured_cloudevents_json() {
        let json = to_json(
            &build(
                &meta(),
                &Payload {
                    total: "1.00".into(),
                },
            )
            .unwrap(),
        )
        .unwrap();
        let value: serde_json::Value = serde_json::from_slice(&json).unwrap();
        assert_eq!(value["specversion"], "1.0");
        assert_eq!(value["type"], "order.paid");
        assert_eq!(value["source"], "/orders");
        assert_eq!(value["datacontenttype"], "application/json");
        assert_eq!(
            value["sequence"], "0000000002",
            "zero-padded so it sorts as a string"
        );
        assert_eq!(value["data"]["total"], "1.00");
    }

    #[test]
    fn garbage_is_refused() {
        assert!(parse::<Payload>(b"not json").is_err());
        assert!(parse::<Payload>(br#"{"specversion":"1.0"}"#).is_err());
    }
}
