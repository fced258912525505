//! Request and response bodies: the wire shapes of the orders API (their
//! conversion into the domain is [`super::convert`]'s).

use contracts::money::Amount;
use contracts::order::{OrderData, OrderStatus};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use crate::store::HistoryEntry;

/// Default and largest page size of `GET /api/v1/orders`.
pub const DEFAULT_LIMIT: u32 = 20;
pub const MAX_LIMIT: u32 = 100;

/// A new order. The server computes every subtotal and total. Every form
/// the source documents use is accepted: money as a decimal string or a
/// JSON number, `product_id` as a string or an integer, the technical
/// design's address names beside ours, `customerId` for `user_id`, and a
/// product id alone for an item of quantity 1.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateOrderBody {
    /// Whose order this is. Defaults to the caller; only an admin
    /// (`orders.admin`) may name another user.
    #[serde(default)]
    #[schema(example = "usr_abc123")]
    pub user_id: Option<String>,
    /// `user_id` as the order-management overview names it.
    #[serde(default, rename = "customerId")]
    #[schema(deprecated)]
    pub customer_id: Option<String>,
    /// ISO 4217 code of every amount in the order. Optional: the
    /// catalogue's prices say, else the configured default (USD).
    #[serde(default)]
    #[schema(example = "USD", pattern = "^[A-Z]{3}$")]
    pub currency: Option<String>,
    /// 1 to 100 lines.
    #[schema(min_items = 1, max_items = 100)]
    pub items: Vec<ItemInput>,
    /// Required when the shipping method ships (not for digital goods).
    #[serde(default)]
    pub shipping_address: Option<AddressBody>,
    /// Defaults to the shipping address.
    #[serde(default)]
    pub billing_address: Option<AddressBody>,
    /// Case-insensitive: `standard`, `STANDARD`, `express`, `digital`, …
    #[serde(default)]
    #[schema(example = "standard")]
    pub shipping_method: Option<String>,
    /// Up to 2000 characters.
    #[serde(default)]
    pub notes: Option<String>,
    /// How the customer pays, as a name (`CREDIT_CARD`); recorded, no
    /// charge is made without `payment`.
    #[serde(default)]
    #[schema(example = "CREDIT_CARD")]
    pub payment_method: Option<String>,
    /// Charge the order at once (a provider token, never card data).
    #[serde(default)]
    pub payment: Option<PaymentMethodBody>,
    /// A promotion code; its discount is in `discount`. Unknown, expired,
    /// in another currency, below its minimum or over its per-user limit:
    /// `400 invalid_coupon`.
    #[serde(default)]
    #[schema(example = "SUMMER10")]
    pub coupon_code: Option<String>,
}

/// One line of a new order: an object, or a product id alone (quantity 1).
#[derive(Debug)]
pub struct ItemInput(pub CreateItemBody);

impl<'de> Deserialize<'de> for ItemInput {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl<'de> serde::de::Visitor<'de> for Visitor {
            type Value = ItemInput;

            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("an item object or a product id")
            }

            fn visit_str<E: serde::de::Error>(self, id: &str) -> Result<ItemInput, E> {
                Ok(ItemInput(CreateItemBody::of_product(id.to_owned())))
            }

            fn visit_u64<E: serde::de::Error>(self, id: u64) -> Result<ItemInput, E> {
                Ok(ItemInput(CreateItemBody::of_product(id.to_string())))
            }

            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                map: A,
            ) -> Result<ItemInput, A::Error> {
                CreateItemBody::deserialize(serde::de::value::MapAccessDeserializer::new(map))
                    .map(ItemInput)
            }
        }
        deserializer.deserialize_any(Visitor)
    }
}

impl utoipa::PartialSchema for ItemInput {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        use utoipa::openapi::schema::{ObjectBuilder, OneOfBuilder, Ref, Type};
        OneOfBuilder::new()
            .item(Ref::from_schema_name("CreateItemBody"))
            .item(
                ObjectBuilder::new()
                    .schema_type(Type::String)
                    .description(Some("A product id alone: one unit of it."))
                    .min_length(Some(1))
                    .max_length(Some(64)),
            )
            .into()
    }
}

impl ToSchema for ItemInput {
    fn schemas(
        schemas: &mut Vec<(
            String,
            utoipa::openapi::RefOr<utoipa::openapi::schema::Schema>,
        )>,
    ) {
        schemas.push((
            "CreateItemBody".to_owned(),
            <CreateItemBody as utoipa::PartialSchema>::schema(),
        ));
        <CreateItemBody as ToSchema>::schemas(schemas);
    }
}

/// A catalogue reference: a string, or an integer (`1`) as some catalogues
/// number their products.
#[derive(Debug, Clone)]
pub struct Reference(pub String);

impl<'de> Deserialize<'de> for Reference {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl serde::de::Visitor<'_> for Visitor {
            type Value = Reference;

            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a string or a non-negative integer")
            }

            fn visit_str<E: serde::de::Error>(self, id: &str) -> Result<Reference, E> {
                Ok(Reference(id.to_owned()))
            }

            fn visit_u64<E: serde::de::Error>(self, id: u64) -> Result<Reference, E> {
                Ok(Reference(id.to_string()))
            }
        }
        deserializer.deserialize_any(Visitor)
    }
}

impl utoipa::PartialSchema for Reference {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        use utoipa::openapi::schema::{ObjectBuilder, OneOfBuilder, Type};
        OneOfBuilder::new()
            .item(
                ObjectBuilder::new()
                    .schema_type(Type::String)
                    .min_length(Some(1))
                    .max_length(Some(64))
                    .pattern(Some("^[^\\s]+$"))
                    .examples(["prod_123"]),
            )
            .item(
                ObjectBuilder::new()
                    .schema_type(Type::Integer)
                    .minimum(Some(0))
                    .examples([1]),
            )
            .into()
    }
}

impl ToSchema for Reference {}

/// One line of a new order.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateItemBody {
    /// A string or an integer.
    pub product_id: Reference,
    /// The product's variant (its own name, SKU and price).
    #[serde(default)]
    pub variant_id: Option<Reference>,
    /// 1 to 10000.
    #[schema(example = 2, minimum = 1, maximum = 10000)]
    pub quantity: i64,
    /// A decimal string (`"29.99"`) or number (`29.99`), with at most the
    /// currency's decimals. Required without a catalogue; with one, the
    /// catalogue's price is used and this is ignored.
    #[serde(default)]
    pub unit_price: Option<Amount>,
    /// If given, must equal the order's currency.
    #[serde(default)]
    #[schema(pattern = "^[A-Z]{3}$")]
    pub currency: Option<String>,
    #[serde(default)]
    #[schema(example = "T-shirt")]
    pub name: Option<String>,
    #[serde(default)]
    #[schema(example = "TS-1")]
    pub sku: Option<String>,
}

impl CreateItemBody {
    pub(super) fn of_product(product_id: String) -> Self {
        Self {
            product_id: Reference(product_id),
            variant_id: None,
            quantity: 1,
            unit_price: None,
            currency: None,
            name: None,
            sku: None,
        }
    }
}

/// A postal address, with the technical design's names (`address_line1`,
/// `address_line2`, `state`); `line1`, `line2` and `region` are accepted
/// too. Required: names, first line, `city`, `postal_code`, `country`.
/// (Missing fields are reported together with every other problem, so they
/// default to empty here and are checked in the domain.)
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AddressBody {
    /// `SHIPPING` or `BILLING` (case-insensitive): must match where the
    /// address is given.
    #[serde(default)]
    #[schema(example = "SHIPPING")]
    pub address_type: Option<String>,
    #[serde(default)]
    #[schema(example = "Ada", required = true, min_length = 1, max_length = 100)]
    pub first_name: String,
    #[serde(default)]
    #[schema(
        example = "Lovelace",
        required = true,
        min_length = 1,
        max_length = 100
    )]
    pub last_name: String,
    #[serde(default)]
    #[schema(example = "12 St James's Square", min_length = 1, max_length = 200)]
    pub address_line1: Option<String>,
    /// `address_line1` by its earlier name.
    #[serde(default)]
    #[schema(deprecated, max_length = 200)]
    pub line1: Option<String>,
    #[serde(default)]
    #[schema(max_length = 200)]
    pub address_line2: Option<String>,
    /// `address_line2` by its earlier name.
    #[serde(default)]
    #[schema(deprecated, max_length = 200)]
    pub line2: Option<String>,
    #[serde(default)]
    #[schema(example = "London", required = true, min_length = 1, max_length = 100)]
    pub city: String,
    /// State, province or county.
    #[serde(default)]
    #[schema(max_length = 100, example = "NY")]
    pub state: Option<String>,
    /// `state` by its earlier name.
    #[serde(default)]
    #[schema(deprecated, max_length = 100)]
    pub region: Option<String>,
    #[serde(default)]
    #[schema(example = "SW1Y 4JH", required = true, min_length = 1, max_length = 20)]
    pub postal_code: String,
    /// ISO 3166-1 alpha-2 (`US`) or alpha-3 (`USA`); answered as alpha-2.
    #[serde(default)]
    #[schema(example = "GB", required = true, pattern = "^[A-Z]{2,3}$")]
    pub country: String,
    #[serde(default)]
    #[schema(max_length = 32)]
    pub phone: Option<String>,
    #[serde(default)]
    #[schema(max_length = 254, example = "ada@example.com")]
    pub email: Option<String>,
}

/// A payment method: a provider token such as `tok_visa`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PaymentMethodBody {
    #[schema(example = "card")]
    pub method: String,
    #[schema(example = "tok_visa")]
    pub token: String,
}

/// `PATCH /api/v1/orders/{id}/items/{item_id}`: the new quantity.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateItemBody {
    /// 1 to 10000.
    #[schema(example = 3, minimum = 1, maximum = 10000)]
    pub quantity: i64,
}

/// `PATCH /api/v1/orders/{id}`: the status to move to.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateOrderBody {
    /// `paid`, `shipped`, `delivered` (admin) or `cancelled`.
    #[schema(
        example = "shipped",
        pattern = "^(pending|paid|shipped|delivered|cancelled)$"
    )]
    pub status: String,
    /// Why, for a cancellation.
    #[serde(default)]
    pub reason: Option<String>,
    /// Who carries it (with `shipped` only), up to 100 characters.
    #[serde(default)]
    #[schema(example = "UPS")]
    pub carrier: Option<String>,
    /// The carrier's tracking number (with `shipped` only), up to 100
    /// characters.
    #[serde(default)]
    #[schema(example = "1Z999AA10123456784")]
    pub tracking_number: Option<String>,
}

/// Query of `GET /api/v1/orders`.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ListOrdersQuery {
    /// Only this user's orders (admins; others may only name themselves).
    pub user_id: Option<String>,
    /// Only orders in this status.
    #[param(value_type = Option<OrderStatus>)]
    pub status: Option<String>,
    /// Page size, 1 to 100 (default 20).
    pub limit: Option<i64>,
    /// Orders to skip (default 0, at most 10,000; deeper pages are reached
    /// with `cursor`).
    pub offset: Option<i64>,
    /// Where the page starts: the `next_cursor` of the page before
    /// (opaque). Pages walked by cursor never skip or repeat an order as
    /// new ones arrive.
    pub cursor: Option<String>,
}

/// Query of `DELETE /api/v1/orders/{id}`.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct CancelOrderQuery {
    /// Why the order is cancelled.
    pub reason: Option<String>,
}

/// A page of orders, newest first.
#[derive(Debug, Serialize, ToSchema)]
pub struct OrderListResponse {
    pub data: Vec<OrderData>,
    /// Orders matching the filter across all pages, counted up to 1,000:
    /// with more, it is 1000 and `total_capped` is true.
    pub total: u64,
    /// Whether more than 1,000 orders match (then `total` is 1000).
    pub total_capped: bool,
    pub limit: u32,
    pub offset: u32,
    /// Whether another page follows.
    pub has_more: bool,
    /// Pass as `cursor` for the next page; absent on the last page.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
}

/// The audit trail of an order, oldest first, a page at a time.
#[derive(Debug, Serialize, ToSchema)]
pub struct OrderHistoryResponse {
    pub order_id: Uuid,
    pub data: Vec<OrderEventResponse>,
    /// Pass as `after` for the next page; absent on the last page.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_after: Option<u32>,
}

/// Query of `GET /api/v1/orders/{id}/events`.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct HistoryQuery {
    /// Events after this sequence number (default 0: from the start).
    pub after: Option<u32>,
    /// Page size, 1 to the configured maximum (default 100).
    pub limit: Option<u32>,
}

/// One event of an order's history.
#[derive(Debug, Serialize, ToSchema)]
pub struct OrderEventResponse {
    /// The event id (also the published CloudEvent's id).
    pub id: Uuid,
    /// 1 for `order.created`, then gap-free.
    pub sequence: u32,
    #[serde(rename = "type")]
    #[schema(example = "order.created")]
    pub event_type: String,
    #[serde(with = "time::serde::rfc3339")]
    pub occurred_at: OffsetDateTime,
    /// Who caused it (token subject).
    pub actor: Option<String>,
    /// What happened: the facts recorded by this event.
    #[schema(value_type = Object)]
    pub data: serde_json::Value,
}

impl From<HistoryEntry> for OrderEventResponse {
    fn from(entry: HistoryEntry) -> Self {
        Self {
            id: entry.id,
            sequence: entry.sequence,
            event_type: entry.event_type,
            occurred_at: entry.occurred_at,
            actor: entry.actor,
            data: entry.payload,
        }
    }
}
