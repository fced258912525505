//! The public representation of an order (REST responses and event data).

use contracts::order::{self as wire, AddressData, AddressType, OrderData, OrderItemData};

use platform::db::JsonText;

use crate::domain::{Address, Order};

/// The shape of [`order_data`]'s JSON, stored beside every event's snapshot
/// (`events.snapshot_shape`). `GET /api/v1/orders/{id}` serves a stored
/// snapshot as it is only when its shape is this one, and renders the order
/// afresh otherwise; so bump it whenever the representation changes (a field
/// added, renamed, or formatted differently). `view_shape_is_pinned` fails
/// until you do.
pub const SHAPE: i16 = 3;

/// The personal fields of an order's representation: sealed at rest,
/// absent from published events.
#[derive(Debug, Default, serde::Serialize)]
struct Personal {
    #[serde(skip_serializing_if = "Option::is_none")]
    shipping_address: Option<AddressData>,
    #[serde(skip_serializing_if = "Option::is_none")]
    billing_address: Option<AddressData>,
    #[serde(skip_serializing_if = "Option::is_none")]
    notes: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    cancellation_reason: Option<String>,
    /// The returns with their reasons (the public part has them without).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    returns: Vec<wire::ReturnData>,
}

/// An order's representation in two parts: public, and personal (a JSON
/// object, if there is any).
pub type Parts = (JsonText, Option<String>);

/// The order's representation in two parts: the public one (what events
/// publish, stored as it is) and, if it has any, its personal fields as a
/// JSON object (sealed at rest).
pub fn split(order: &Order) -> anyhow::Result<Parts> {
    let mut data = order_data(order);
    let personal = Personal {
        shipping_address: data.shipping_address.take(),
        billing_address: data.billing_address.take(),
        notes: data.notes.take(),
        cancellation_reason: data.cancellation_reason.take(),
        returns: match data.returns.iter().any(|r| r.reason.is_some()) {
            true => {
                let whole = data.returns.clone();
                for r in &mut data.returns {
                    r.reason = None;
                }
                whole
            }
            false => Vec::new(),
        },
    };
    let public = JsonText::of(&data)?;
    let personal = serde_json::to_string(&personal)?;
    Ok((public, (personal != "{}").then_some(personal)))
}

/// The whole representation from its two parts: the personal object's
/// fields appended to the public object's (the public part has none of
/// them, so no key is repeated).
pub fn join(public: &str, personal: &str) -> String {
    // The returns (with their reasons) replace the public ones: merged as
    // JSON (orders with returns only).
    if personal.contains("\"returns\":") {
        let merged = serde_json::from_str::<serde_json::Map<String, serde_json::Value>>(public)
            .and_then(|mut whole| {
                whole.extend(serde_json::from_str::<serde_json::Map<_, _>>(personal)?);
                serde_json::to_string(&whole)
            });
        return merged.unwrap_or_else(|_| public.to_owned());
    }
    let (Some(public_body), Some(personal_body)) = (
        public.trim_end().strip_suffix('}'),
        personal.trim_start().strip_prefix('{'),
    ) else {
        return public.to_owned();
    };
    if personal_body.trim() == "}" {
        return public.to_owned();
    }
    let mut joined = String::with_capacity(public.len() + personal.len());
    joined.push_str(public_body);
    joined.push(',');
    joined.push_str(personal_body);
    joined
}

pub fn order_data(order: &Order) -> OrderData {
    OrderData {
        returns: order
            .returns
            .iter()
            .map(|r| wire::ReturnData {
                id: r.id,
                status: r.status.as_str().to_owned(),
                reason: (!r.reason.is_empty()).then(|| r.reason.clone()),
                items: r
                    .lines
                    .iter()
                    .map(|line| wire::ReturnItemData {
                        item_id: line.item_id,
                        quantity: line.quantity.get(),
                    })
                    .collect(),
                refund_amount: r.refund.map(|refund| refund.to_string()),
                requested_at: r.requested_at,
            })
            .collect(),
        id: order.id.0,
        order_number: order.number.to_string(),
        user_id: order.user_id.to_string(),
        status: order.status,
        payment_status: order.payment_status,
        currency: order.currency.code().to_owned(),
        items: order
            .items
            .iter()
            .map(|item| OrderItemData {
                id: item.id,
                product_id: item.product_id.to_string(),
                variant_id: item.variant_id.as_ref().map(ToString::to_string),
                name: item.name.clone(),
                sku: item.sku.clone(),
                quantity: item.quantity.get(),
                unit_price: item.unit_price.to_string(),
                // A placed order's subtotals were checked when it was placed.
                subtotal: item.subtotal().map(|m| m.to_string()).unwrap_or_default(),
            })
            .collect(),
        shipping_address: order
            .details
            .shipping_address
            .as_ref()
            .map(|a| address(a, AddressType::Shipping)),
        billing_address: order
            .details
            .billing_address
            .as_ref()
            .map(|a| address(a, AddressType::Billing)),
        shipping_method: order.details.shipping_method.clone(),
        notes: order.details.notes.clone(),
        payment_method: order.details.payment_method.clone(),
        coupon_code: order.charges.coupon.as_ref().map(|c| c.code.clone()),
        cancellation_reason: order.cancellation_reason.clone(),
        carrier: order.shipment.carrier.clone(),
        tracking_number: order.shipment.tracking_number.clone(),
        subtotal: order.totals.subtotal.to_string(),
        discount: order.totals.discount.to_string(),
        tax: order.totals.tax.to_string(),
        shipping: order.totals.shipping.to_string(),
        total: order.totals.total.to_string(),
        created_at: order.created_at,
        updated_at: order.updated_at,
        completed_at: order.completed_at,
        cancelled_at: order.cancelled_at,
        version: order.version,
    }
}

fn address(address: &Address, address_type: AddressType) -> AddressData {
    AddressData {
        address_type,
        first_name: address.first_name.clone(),
        last_name: address.last_name.clone(),
        address_line1: address.line1.clone(),
        address_line2: address.line2.clone(),
        city: address.city.clone(),
        state: address.region.clone(),
        postal_code: address.postal_code.clone(),
        country: address.country.clone(),
        phone: address.phone.clone(),
        email: address.email.clone(),
    }
}

#[cfg(test)]
mod tests {
    /// FNV-1a (64 bits): a fingerprint that no Rust release changes.
    fn fingerprint(bytes: &[u8]) -> u64 {
        bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, byte| {
            (hash ^ u64::from(*byte)).wrapping_mul(0x0000_0100_0000_01b3)
        })
    }

    /// The order's JSON Schema (generated from `OrderData`, checked in, kept
    /// current by the contracts test) is pinned to [`super::SHAPE`]: a
    /// change to the representation fails here until the shape is bumped,
    /// so stored snapshots of the old one are never served as the new.
    #[test]
    fn view_shape_is_pinned() {
        let schema = include_str!("../../../contracts/schemas/order.created.v1.json");
        assert_eq!(
            (super::SHAPE, fingerprint(schema.as_bytes())),
            (3, 0xedc5_3e6c_cbdb_22d3),
            "the order's representation changed: bump view::SHAPE, then pin the new fingerprint here"
        );
    }
}
