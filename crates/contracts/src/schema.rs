//! Language-neutral contracts generated from the types in this crate: a JSON
//! Schema (draft 2020-12) of every event's data, and the AsyncAPI document of
//! both exchanges. `just contracts` writes them under `contracts/`; a test
//! fails when the checked-in files are stale.

use serde_json::{Map, Value, json};
use utoipa::ToSchema;

use crate::order::{self, OrderData, OrderEventType};
use crate::payment::{self, PaymentData, PaymentEventType};

/// The `dataschema` of an event type: the `$id` of
/// `contracts/schemas/<type>.v1.json`.
pub fn data_schema_url(event_type: &str) -> String {
    format!("https://schemas.orders.example/events/{event_type}.v1.json")
}

/// The file name of an event type's data schema under `contracts/schemas/`.
pub fn file_name(event_type: &str) -> String {
    format!("{event_type}.v1.json")
}

fn components<T: ToSchema>() -> Map<String, Value> {
    let mut nested = Vec::new();
    T::schemas(&mut nested);
    let mut map: Map<String, Value> = nested
        .into_iter()
        .map(|(name, schema)| (name, serde_json::to_value(schema).unwrap_or_default()))
        .collect();
    map.insert(
        T::name().into_owned(),
        serde_json::to_value(T::schema()).unwrap_or_default(),
    );
    map
}

/// Rewrites OpenAPI component references to JSON Schema `$defs`.
fn to_defs(value: &mut Value) {
    match value {
        Value::Object(map) => {
            if let Some(Value::String(reference)) = map.get_mut("$ref")
                && let Some(name) = reference.strip_prefix("#/components/schemas/")
            {
                *reference = format!("#/$defs/{name}");
            }
            map.values_mut().for_each(to_defs);
        }
        Value::Array(items) => items.iter_mut().for_each(to_defs),
        _ => {}
    }
}

fn json_schema<T: ToSchema>(event_type: &str, description: &str) -> Value {
    let mut defs = components::<T>();
    let root = defs.remove(T::name().as_ref()).unwrap_or_default();
    let mut document = Map::new();
    document.insert(
        "$schema".into(),
        json!("https://json-schema.org/draft/2020-12/schema"),
    );
    document.insert("$id".into(), json!(data_schema_url(event_type)));
    document.insert("title".into(), json!(format!("{event_type} data")));
    document.insert("description".into(), json!(description));
    if let Value::Object(root) = root {
        document.extend(root);
    }
    document.insert("$defs".into(), Value::Object(defs));
    let mut document = Value::Object(document);
    to_defs(&mut document);
    document
}

fn order_description(event: OrderEventType) -> &'static str {
    match event {
        OrderEventType::Created => "A new order was placed (status pending).",
        OrderEventType::Paid => "A successful payment of the order's total paid it.",
        OrderEventType::Shipped => "The order was shipped.",
        OrderEventType::Delivered => "The order was delivered.",
        OrderEventType::PersonalDataErased => {
            "Its owner's personal data was erased on request: the order's addresses, notes and \
             reasons are gone for good (amounts, items and states stay). A subscriber that kept a \
             copy of them erases it."
        }
        OrderEventType::Cancelled => "The order was cancelled (from pending, paid or shipped).",
        OrderEventType::PaymentFailed => {
            "A payment attempt failed; the order stays pending and payable."
        }
        OrderEventType::PaymentRejected => {
            "A charge succeeded but does not pay the order (it was cancelled or paid already, or \
             the amount is not its total); payments refunds it."
        }
        OrderEventType::Refunded => {
            "A charge of the order was refunded, in full or in part (its payment after a cancellation, \
             a refund of a line, or a rejected charge)."
        }
        OrderEventType::ItemAdded => "A line was added to the pending order (totals recomputed).",
        OrderEventType::ItemChanged => {
            "A line's quantity changed on the pending order (totals recomputed)."
        }
        OrderEventType::ItemRemoved => {
            "A line was removed from the pending order (totals recomputed)."
        }
        OrderEventType::CaptureRequested => {
            "Manual capture: the order is being shipped and its authorized payment is being \
             captured; it becomes shipped when the capture succeeds."
        }
        OrderEventType::CaptureFailed => {
            "Manual capture: the capture asked for at shipment was declined; the order is not shipped."
        }
        OrderEventType::PaymentCaptured => {
            "Manual capture: the order's authorized payment was captured outside a shipment."
        }
        OrderEventType::PaymentVoided => {
            "Manual capture: the order's authorization was released (voided); nothing was taken."
        }
        OrderEventType::ReturnRequested => {
            "The owner asked to return some lines of the delivered order (see returns)."
        }
        OrderEventType::ReturnReceived => {
            "The shop received a return; its refund_amount is being refunded (order.refunded follows)."
        }
    }
}

fn payment_description(event: PaymentEventType) -> &'static str {
    match event {
        PaymentEventType::Successful => "The order was charged.",
        PaymentEventType::Failed => "The charge failed (failure_reason says why).",
        PaymentEventType::Refunded => {
            "A refund of the charge was made (refund says which and how much; refunded_amount is \
             the total given back so far)."
        }
        PaymentEventType::Authorized => {
            "Manual capture: the amount is held on the card; nothing is taken until it is captured."
        }
        PaymentEventType::Captured => {
            "Manual capture: the held amount (or part of it, captured_amount) was taken; \
             the rest of the hold is released."
        }
        PaymentEventType::Voided => "Manual capture: the hold was released; nothing was taken.",
    }
}

/// Every event type with its source, exchange and description.
fn events() -> Vec<(&'static str, &'static str, &'static str, &'static str, bool)> {
    let orders = OrderEventType::ALL.into_iter().map(|t| {
        (
            t.as_str(),
            order::SOURCE,
            order::EXCHANGE,
            order_description(t),
            true,
        )
    });
    let payments = PaymentEventType::ALL.into_iter().map(|t| {
        (
            t.as_str(),
            payment::SOURCE,
            payment::EXCHANGE,
            payment_description(t),
            false,
        )
    });
    orders.chain(payments).collect()
}

/// `(file name, schema)` of every event's data schema.
pub fn data_schemas() -> Vec<(String, Value)> {
    events()
        .into_iter()
        .map(|(event_type, _, _, description, is_order)| {
            let schema = if is_order {
                json_schema::<OrderData>(event_type, description)
            } else {
                json_schema::<PaymentData>(event_type, description)
            };
            (file_name(event_type), schema)
        })
        .collect()
}

/// The CloudEvents envelope of `event_type` with its data.
fn envelope(event_type: &str, source: &str, data: &str, sequenced: bool) -> Value {
    let mut properties = json!({
        "specversion": {"const": "1.0"},
        "id": {"type": "string", "format": "uuid", "description": "Unique per event; also the AMQP message_id."},
        "source": {"const": source},
        "type": {"const": event_type},
        "subject": {"type": "string", "format": "uuid", "description": "The order id."},
        "time": {"type": "string", "format": "date-time"},
        "datacontenttype": {"const": "application/json"},
        "dataschema": {"const": data_schema_url(event_type)},
        "traceparent": {"type": "string", "description": "W3C trace context of the change."},
        "data": {"$ref": format!("#/components/schemas/{data}")}
    });
    let mut required = vec![
        "specversion",
        "id",
        "source",
        "type",
        "subject",
        "time",
        "datacontenttype",
        "data",
    ];
    if sequenced {
        properties["sequence"] = json!({
            "type": "string",
            "pattern": "^[0-9]{10}$",
            "description": "Per-order position, gap-free from 1, zero-padded so it sorts as a string."
        });
        required.push("sequence");
    }
    json!({"type": "object", "required": required, "properties": properties})
}

/// The AsyncAPI document of both exchanges (AsyncAPI 2.6, AMQP 0-9-1 bindings).
pub fn asyncapi() -> Value {
    let mut channels = Map::new();
    let mut messages = Map::new();
    let mut schemas = components::<OrderData>();
    schemas.extend(components::<PaymentData>());
    for (event_type, source, exchange, description, is_order) in events() {
        let envelope_name = format!("{event_type}.envelope");
        let publisher = if is_order { "orders" } else { "payments" };
        channels.insert(
            event_type.to_owned(),
            json!({
                "description": format!("{description} Published by {publisher} to the `{exchange}` topic exchange with routing key `{event_type}`."),
                "bindings": {"amqp": {
                    "is": "routingKey",
                    "exchange": {"name": exchange, "type": "topic", "durable": true, "autoDelete": false, "vhost": "/"},
                    "bindingVersion": "0.2.0"
                }},
                "subscribe": {
                    "operationId": format!("receive_{}", event_type.replace('.', "_")),
                    "summary": format!("Receive {event_type}"),
                    "message": {"$ref": format!("#/components/messages/{event_type}")}
                }
            }),
        );
        messages.insert(
            event_type.to_owned(),
            json!({
                "name": event_type,
                "title": event_type,
                "summary": description,
                "contentType": crate::amqp::CONTENT_TYPE,
                "headers": {"type": "object", "properties": {
                    crate::amqp::TRACEPARENT_HEADER: {"type": "string", "description": "W3C trace context (also in the CloudEvent)."}
                }},
                "payload": {"$ref": format!("#/components/schemas/{envelope_name}")},
                "bindings": {"amqp": {"deliveryMode": 2, "messageType": event_type, "bindingVersion": "0.2.0"}}
            }),
        );
        let data = if is_order { "OrderData" } else { "PaymentData" };
        schemas.insert(envelope_name, envelope(event_type, source, data, is_order));
    }
    json!({
        "asyncapi": "2.6.0",
        "id": "urn:orders-platform:events",
        "info": {
            "title": "Orders & Payments events",
            "version": "1.0.0",
            "description": "CloudEvents 1.0 in structured mode (the AMQP body is the whole event as JSON) on two durable topic exchanges; routing key = event type. Delivery is at least once: deduplicate by the event id. Bind `order.*` to follow every order change."
        },
        "defaultContentType": crate::amqp::CONTENT_TYPE,
        "servers": {"local": {"url": "127.0.0.1:5672", "protocol": "amqp", "protocolVersion": "0.9.1"}},
        "channels": channels,
        "components": {"messages": messages, "schemas": schemas}
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_event_type_has_a_self_contained_data_schema() {
        let schemas = data_schemas();
        assert_eq!(
            schemas.len(),
            OrderEventType::ALL.len() + PaymentEventType::ALL.len()
        );
        for (file, schema) in &schemas {
            let text = schema.to_string();
            assert!(
                !text.contains("#/components/"),
                "{file} refers outside itself"
            );
            assert!(schema["$defs"].is_object(), "{file}");
            assert_eq!(schema["type"], "object", "{file}");
        }
    }

    #[test]
    fn dataschema_urls_name_the_schema_files() {
        for t in OrderEventType::ALL {
            assert_eq!(t.data_schema(), data_schema_url(t.as_str()));
        }
    }
}
