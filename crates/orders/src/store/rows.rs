//! Row types of schema `orders`, written from the domain. Only events are
//! read back into it (replayed, every value re-parsed, so a corrupt row is
//! an error, never a silently invalid order): the read model is never turned
//! back into an aggregate a command could decide on.

use anyhow::Context;
use diesel::prelude::*;
use platform::db::JsonText;
use time::OffsetDateTime;
use uuid::Uuid;

use super::schema::{events, order_items, orders};
use platform::privacy::DataKey;

use super::sealed::Sealer;
use crate::domain::{Order, OrderEvent, OrderId, Recorded};

/// An event about to be appended, with what the store records beside it.
#[derive(Debug)]
pub struct NewEvent<'a> {
    pub id: Uuid,
    pub recorded: &'a Recorded,
    /// The public order state after this event (the published data).
    pub snapshot: JsonText,
    /// The personal fields of that state, a JSON object (sealed when
    /// written).
    pub personal: Option<String>,
}

/// Who caused a write, recorded with its events.
#[derive(Debug, Clone, Copy)]
pub struct Cause<'a> {
    pub actor: &'a str,
    pub traceparent: Option<&'a str>,
}

/// Decodes a stored event whose personal fields are back in its payload.
pub(super) fn decode(row: &EventRow) -> anyhow::Result<OrderEvent> {
    let version = u16::try_from(row.event_version).context("negative event version")?;
    OrderEvent::decode(&row.event_type, version, row.payload.clone())
        .with_context(|| format!("decoding event {}", row.id))
}

#[derive(Debug, Insertable)]
#[diesel(table_name = events, treat_none_as_default_value = false)]
pub(super) struct NewEventRow<'a> {
    id: Uuid,
    order_id: Uuid,
    sequence: i32,
    event_type: &'static str,
    event_version: i16,
    payload: JsonText,
    snapshot: &'a JsonText,
    snapshot_shape: i16,
    sealed: Option<Vec<u8>>,
    actor: Option<&'a str>,
    traceparent: Option<&'a str>,
    occurred_at: OffsetDateTime,
}

impl<'a> NewEventRow<'a> {
    pub(super) fn new(
        event: &'a NewEvent<'_>,
        cause: Cause<'a>,
        sealer: Sealer<'_>,
    ) -> anyhow::Result<Self> {
        let recorded = event.recorded;
        let (payload, sealed) = super::sealed::seal(
            sealer,
            &recorded.event,
            recorded.order_id.0,
            recorded.sequence,
            event.personal.as_deref(),
        )?;
        Ok(Self {
            id: event.id,
            order_id: recorded.order_id.0,
            sequence: i32::try_from(recorded.sequence).context("sequence overflow")?,
            event_type: recorded.event.event_type(),
            event_version: i16::try_from(recorded.event.event_version())
                .context("event version overflow")?,
            payload,
            snapshot: &event.snapshot,
            snapshot_shape: crate::view::SHAPE,
            sealed,
            actor: Some(cause.actor),
            traceparent: cause.traceparent,
            occurred_at: recorded.occurred_at,
        })
    }
}

#[derive(Debug, Queryable, Selectable)]
#[diesel(table_name = events)]
pub(super) struct EventRow {
    pub id: Uuid,
    pub order_id: Uuid,
    pub sequence: i32,
    pub event_type: String,
    pub event_version: i16,
    pub payload: serde_json::Value,
    pub sealed: Option<Vec<u8>>,
    pub actor: Option<String>,
    pub occurred_at: OffsetDateTime,
}

impl EventRow {
    /// Puts the personal fields back into the payload (with the owner's
    /// data key; none if erased).
    pub(super) fn open(&mut self, key: Option<&DataKey>) -> anyhow::Result<()> {
        let sequence = u32::try_from(self.sequence).context("negative sequence")?;
        super::sealed::open_payload(
            key,
            self.sealed.as_deref(),
            self.order_id,
            sequence,
            &mut self.payload,
        )
    }

    pub(super) fn into_recorded(mut self, key: Option<&DataKey>) -> anyhow::Result<Recorded> {
        self.open(key)?;
        let event = decode(&self)?;
        Ok(Recorded {
            order_id: OrderId(self.order_id),
            sequence: u32::try_from(self.sequence).context("negative sequence")?,
            occurred_at: self.occurred_at,
            event,
        })
    }
}

#[derive(Debug, Queryable, Selectable, Insertable, serde::Serialize)]
#[diesel(table_name = orders, treat_none_as_default_value = false)]
pub(super) struct OrderRow {
    pub id: Uuid,
    order_number: String,
    user_id: String,
    status: String,
    payment_status: String,
    currency: String,
    subtotal_minor: i64,
    discount_minor: i64,
    tax_minor: i64,
    shipping_minor: i64,
    total_minor: i64,
    shipping_method: Option<String>,
    payment_method: Option<String>,
    tax_rate_bp: i32,
    shipping_fee_minor: Option<i64>,
    version: i32,
    #[serde(with = "time::serde::rfc3339")]
    created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    updated_at: OffsetDateTime,
    coupon: Option<serde_json::Value>,
    carrier: Option<String>,
    tracking_number: Option<String>,
    #[serde(with = "time::serde::rfc3339::option")]
    completed_at: Option<OffsetDateTime>,
    #[serde(with = "time::serde::rfc3339::option")]
    cancelled_at: Option<OffsetDateTime>,
}

impl OrderRow {
    pub(super) fn from_order(order: &Order) -> Self {
        Self {
            id: order.id.0,
            order_number: order.number.as_str().to_owned(),
            user_id: order.user_id.as_str().to_owned(),
            status: order.status.as_str().to_owned(),
            payment_status: order.payment_status.as_str().to_owned(),
            currency: order.currency.code().to_owned(),
            subtotal_minor: order.totals.subtotal.minor(),
            discount_minor: order.totals.discount.minor(),
            tax_minor: order.totals.tax.minor(),
            shipping_minor: order.totals.shipping.minor(),
            total_minor: order.totals.total.minor(),
            shipping_method: order.details.shipping_method.clone(),
            payment_method: order.details.payment_method.clone(),
            tax_rate_bp: i32::try_from(order.charges.tax_rate_bp).unwrap_or(i32::MAX),
            shipping_fee_minor: order.charges.shipping.map(|fee| fee.minor()),
            version: i32::try_from(order.version).unwrap_or(i32::MAX),
            created_at: order.created_at,
            updated_at: order.updated_at,
            coupon: order
                .charges
                .coupon
                .as_ref()
                .and_then(|coupon| serde_json::to_value(coupon).ok()),
            carrier: order.shipment.carrier.clone(),
            tracking_number: order.shipment.tracking_number.clone(),
            completed_at: order.completed_at,
            cancelled_at: order.cancelled_at,
        }
    }
}

/// What a change of an existing order updates in the `orders` projection.
#[derive(Debug, AsChangeset)]
#[diesel(table_name = orders, treat_none_as_null = true)]
pub(super) struct OrderChangeRow {
    status: &'static str,
    payment_status: &'static str,
    subtotal_minor: i64,
    discount_minor: i64,
    tax_minor: i64,
    shipping_minor: i64,
    total_minor: i64,
    version: i32,
    updated_at: OffsetDateTime,
    carrier: Option<String>,
    tracking_number: Option<String>,
    completed_at: Option<OffsetDateTime>,
    cancelled_at: Option<OffsetDateTime>,
}

impl OrderChangeRow {
    pub(super) fn from_order(order: &Order) -> Self {
        Self {
            status: order.status.as_str(),
            payment_status: order.payment_status.as_str(),
            subtotal_minor: order.totals.subtotal.minor(),
            discount_minor: order.totals.discount.minor(),
            tax_minor: order.totals.tax.minor(),
            shipping_minor: order.totals.shipping.minor(),
            total_minor: order.totals.total.minor(),
            version: i32::try_from(order.version).unwrap_or(i32::MAX),
            updated_at: order.updated_at,
            carrier: order.shipment.carrier.clone(),
            tracking_number: order.shipment.tracking_number.clone(),
            completed_at: order.completed_at,
            cancelled_at: order.cancelled_at,
        }
    }
}

#[derive(Debug, Queryable, Selectable, Insertable, serde::Serialize)]
#[diesel(table_name = order_items, treat_none_as_default_value = false)]
pub(super) struct ItemRow {
    id: Uuid,
    order_id: Uuid,
    line: i32,
    product_id: String,
    name: Option<String>,
    sku: Option<String>,
    quantity: i32,
    unit_price_minor: i64,
    subtotal_minor: i64,
    variant_id: Option<String>,
}

impl ItemRow {
    pub(super) fn from_order(order: &Order) -> Vec<Self> {
        order
            .items
            .iter()
            .zip(0..)
            .map(|(item, line)| Self {
                id: item.id,
                order_id: order.id.0,
                line,
                product_id: item.product_id.as_str().to_owned(),
                name: item.name.clone(),
                sku: item.sku.clone(),
                quantity: i32::try_from(item.quantity.get()).unwrap_or(i32::MAX),
                unit_price_minor: item.unit_price.minor(),
                subtotal_minor: item.subtotal().map_or(0, |m| m.minor()),
                variant_id: item.variant_id.as_ref().map(|v| v.as_str().to_owned()),
            })
            .collect()
    }
}
