//! Request and response bodies, and their conversion into the domain. Each body
//! is parsed whole and every invalid field is reported, with its path.

use contracts::order::{OrderData, OrderStatus};
use platform::FieldError;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use crate::domain::{
    Address, AddressInput, Currency, LineItem, Money, ProductId, Quantity, UserId, Violation,
    values::{optional_text, text},
};
use crate::service::{Actor, OrderDraft, PaymentMethod};
use crate::store::HistoryEntry;

/// Default and largest page size of `GET /api/v1/orders`.
pub const DEFAULT_LIMIT: u32 = 20;
pub const MAX_LIMIT: u32 = 100;

/// A new order. Prices are decimal strings in `currency`; the server computes
/// every subtotal and total.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateOrderBody {
    /// Whose order this is. Defaults to the caller; only an admin
    /// (`orders.admin`) may name another user.
    #[serde(default)]
    pub user_id: Option<String>,
    /// ISO 4217 code of every amount in the order.
    #[schema(example = "USD", pattern = "^[A-Z]{3}$")]
    pub currency: String,
    /// 1 to 100 lines.
    #[schema(min_items = 1, max_items = 100)]
    pub items: Vec<CreateItemBody>,
    pub shipping_address: AddressBody,
    /// Defaults to the shipping address.
    #[serde(default)]
    pub billing_address: Option<AddressBody>,
    #[serde(default)]
    #[schema(example = "standard")]
    pub shipping_method: Option<String>,
    /// Up to 2000 characters.
    #[serde(default)]
    pub notes: Option<String>,
    /// How the order will be paid (a provider token, never card data).
    #[serde(default)]
    pub payment: Option<PaymentMethodBody>,
}

/// One line of a new order.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateItemBody {
    #[schema(
        example = "prod_123",
        min_length = 1,
        max_length = 64,
        pattern = "^[^\\s]+$"
    )]
    pub product_id: String,
    /// 1 to 10000.
    #[schema(example = 2, minimum = 1, maximum = 10000)]
    pub quantity: i64,
    /// Decimal string, e.g. `"29.99"`, with at most the currency's decimals;
    /// never a JSON number. Required without a catalogue; with one, the
    /// catalogue's price is used and this is ignored.
    #[serde(default)]
    #[schema(example = "29.99", pattern = "^[0-9]{1,13}(\\.[0-9]{1,3})?$")]
    pub unit_price: Option<String>,
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

/// A postal address. Required: names, `line1`, `city`, `postal_code`,
/// `country`. (Missing fields are reported together with every other
/// problem, so they default to empty here and are checked in the domain.)
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AddressBody {
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
    #[schema(
        example = "12 St James's Square",
        required = true,
        min_length = 1,
        max_length = 200
    )]
    pub line1: String,
    #[serde(default)]
    #[schema(max_length = 200)]
    pub line2: Option<String>,
    #[serde(default)]
    #[schema(example = "London", required = true, min_length = 1, max_length = 100)]
    pub city: String,
    /// State, province or county.
    #[serde(default)]
    #[schema(max_length = 100)]
    pub region: Option<String>,
    #[serde(default)]
    #[schema(example = "SW1Y 4JH", required = true, min_length = 1, max_length = 20)]
    pub postal_code: String,
    /// ISO 3166-1 alpha-2.
    #[serde(default)]
    #[schema(example = "GB", required = true, pattern = "^[A-Z]{2}$")]
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
    /// Orders to skip (default 0).
    pub offset: Option<i64>,
}

/// Query of `DELETE /api/v1/orders/{id}`.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct CancelOrderQuery {
    /// Why the order is cancelled.
    pub reason: Option<String>,
}

/// A page of orders.
#[derive(Debug, Serialize, ToSchema)]
pub struct OrderListResponse {
    pub data: Vec<OrderData>,
    /// Orders matching the filter, across all pages.
    pub total: u64,
    pub limit: u32,
    pub offset: u32,
}

/// The audit trail of an order: every event, oldest first.
#[derive(Debug, Serialize, ToSchema)]
pub struct OrderHistoryResponse {
    pub order_id: Uuid,
    pub data: Vec<OrderEventResponse>,
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

/// Collects violations under a path prefix.
#[derive(Default)]
pub(super) struct Errors(Vec<FieldError>);

impl Errors {
    fn push(&mut self, field: impl Into<String>, message: impl Into<String>) {
        self.0.push(FieldError::new(field, message));
    }

    fn extend(&mut self, prefix: &str, violations: Vec<Violation>) {
        for violation in violations {
            self.push(format!("{prefix}.{}", violation.field), violation.message);
        }
    }

    /// Keeps `result`'s value or records its error at `field`.
    fn check<T>(&mut self, field: impl Into<String>, result: Result<T, String>) -> Option<T> {
        result.map_err(|message| self.push(field, message)).ok()
    }

    pub(super) fn finish<T>(self, value: Option<T>) -> Result<T, Vec<FieldError>> {
        match value {
            Some(value) if self.0.is_empty() => Ok(value),
            _ => Err(self.0),
        }
    }
}

impl CreateOrderBody {
    /// Validates the whole body for `actor`, reporting every bad field.
    /// With `catalog`, unit prices are not needed (the catalogue's are used).
    pub fn into_draft(self, actor: &Actor, catalog: bool) -> Result<OrderDraft, Vec<FieldError>> {
        let mut errors = Errors::default();
        let owner = self.user_id.as_deref().unwrap_or(&actor.user_id);
        let user_id = errors.check("user_id", UserId::parse(owner));
        let currency = errors.check(
            "currency",
            Currency::parse(&self.currency).map_err(|e| e.to_string()),
        );
        let items: Vec<Option<LineItem>> = self
            .items
            .iter()
            .enumerate()
            .map(|(index, item)| {
                item.to_line_item(&format!("items[{index}]."), currency, catalog, &mut errors)
            })
            .collect();
        let shipping_address = address(&self.shipping_address, "shipping_address", &mut errors);
        let billing_address = match &self.billing_address {
            Some(billing) => address(billing, "billing_address", &mut errors),
            None => shipping_address.clone(),
        };
        let shipping_method = errors.check(
            "shipping_method",
            optional_text(self.shipping_method.as_deref(), 50),
        );
        let notes = errors.check("notes", optional_text(self.notes.as_deref(), 2000));
        let payment = match &self.payment {
            None => Some(None),
            Some(payment) => {
                let method = errors.check("payment.method", text(&payment.method, 50));
                let token = errors.check("payment.token", text(&payment.token, 200));
                method
                    .zip(token)
                    .map(|(method, token)| Some(PaymentMethod { method, token }))
            }
        };
        let draft = (|| {
            Some(OrderDraft {
                user_id: user_id?,
                currency: currency?,
                items: items.into_iter().collect::<Option<Vec<_>>>()?,
                shipping_address: shipping_address?,
                billing_address: billing_address?,
                shipping_method: shipping_method?,
                notes: notes?,
                payment: payment?,
            })
        })();
        errors.finish(draft)
    }
}

impl CreateItemBody {
    /// A new line in `currency` (the order's), every bad field reported.
    pub fn to_item(&self, currency: Currency, catalog: bool) -> Result<LineItem, Vec<FieldError>> {
        let mut errors = Errors::default();
        let item = self.to_line_item("", Some(currency), catalog, &mut errors);
        errors.finish(item)
    }

    fn to_line_item(
        &self,
        prefix: &str,
        order_currency: Option<Currency>,
        catalog: bool,
        errors: &mut Errors,
    ) -> Option<LineItem> {
        let field = |name: &str| format!("{prefix}{name}");
        let product_id = errors.check(field("product_id"), ProductId::parse(&self.product_id));
        let quantity = errors.check(field("quantity"), Quantity::parse(self.quantity));
        let currency = match &self.currency {
            Some(code) => errors.check(
                field("currency"),
                Currency::parse(code).map_err(|e| e.to_string()),
            ),
            None => order_currency,
        };
        let unit_price = currency.and_then(|currency| match (&self.unit_price, catalog) {
            // The catalogue prices the line; a placeholder until it does.
            (_, true) => Some(Money::zero(currency)),
            (None, false) => {
                errors.check::<Money>(field("unit_price"), Err("is required".to_owned()))
            }
            (Some(price), false) => errors.check(
                field("unit_price"),
                Money::parse(price, currency).map_err(|e| e.to_string()),
            ),
        });
        let name = errors.check(field("name"), optional_text(self.name.as_deref(), 200));
        let sku = errors.check(field("sku"), optional_text(self.sku.as_deref(), 64));
        Some(LineItem {
            id: Uuid::now_v7(),
            product_id: product_id?,
            name: name?,
            sku: sku?,
            quantity: quantity?,
            unit_price: unit_price?,
        })
    }
}

fn address(body: &AddressBody, prefix: &str, errors: &mut Errors) -> Option<Address> {
    let input = AddressInput {
        first_name: &body.first_name,
        last_name: &body.last_name,
        line1: &body.line1,
        line2: body.line2.as_deref(),
        city: &body.city,
        region: body.region.as_deref(),
        postal_code: &body.postal_code,
        country: &body.country,
        phone: body.phone.as_deref(),
        email: body.email.as_deref(),
    };
    Address::parse(&input)
        .map_err(|violations| errors.extend(prefix, violations))
        .ok()
}

impl ListOrdersQuery {
    /// Validates the query into a store filter.
    pub fn into_filter(self) -> Result<crate::store::ListFilter, Vec<FieldError>> {
        let mut errors = Errors::default();
        let user_id = match self.user_id.as_deref() {
            None => Some(None),
            Some(user) => errors.check("query.user_id", UserId::parse(user)).map(Some),
        };
        let limit = errors.check(
            "query.limit",
            match self.limit {
                None => Ok(DEFAULT_LIMIT),
                Some(limit @ 1..=100) => Ok(u32::try_from(limit).unwrap_or(DEFAULT_LIMIT)),
                Some(_) => Err(format!("must be between 1 and {MAX_LIMIT}")),
            },
        );
        let offset = errors.check(
            "query.offset",
            match self.offset {
                None => Ok(0),
                Some(offset) => {
                    u32::try_from(offset).map_err(|_| "must be a non-negative integer".to_owned())
                }
            },
        );
        let status = match self.status.as_deref() {
            None => Some(None),
            Some(status) => errors
                .check(
                    "query.status",
                    crate::domain::OrderStatus::parse(status)
                        .ok_or_else(|| format!("`{status}` is not an order status")),
                )
                .map(Some),
        };
        let filter = (|| {
            Some(crate::store::ListFilter {
                user_id: user_id?,
                status: status?,
                limit: limit?,
                offset: offset?,
            })
        })();
        errors.finish(filter)
    }
}
