//! Turning request bodies into the domain's inputs: each body is parsed
//! whole and every invalid field is reported, with its path.

use contracts::order::AddressType;
use platform::FieldError;
use uuid::Uuid;

use super::bodies::*;
use crate::domain::{
    Address, AddressInput, Currency, LineItem, Money, OrderDetails, ProductId, Quantity, Shipment,
    UserId, VariantId, Violation,
    values::{optional_text, text},
};
use crate::service::{Actor, OrderDraft, PaymentMethod};

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
    /// With `catalog`, unit prices are not needed (the catalogue's are
    /// used); without a currency, provisional prices are read in
    /// `default_currency`.
    pub fn into_draft(
        self,
        actor: &Actor,
        catalog: bool,
        default_currency: Currency,
    ) -> Result<OrderDraft, Vec<FieldError>> {
        let mut errors = Errors::default();
        // Bounded before anything else looks at the items (no catalogue or
        // User Service call is made for a body that is refused anyway).
        if self.items.is_empty() || self.items.len() > crate::domain::MAX_ITEMS {
            errors.push(
                "items",
                format!("must have 1 to {} lines", crate::domain::MAX_ITEMS),
            );
            return Err(errors.0);
        }
        let owner = match (&self.user_id, &self.customer_id) {
            (Some(user), Some(customer)) if user != customer => {
                errors.push("customerId", "names another user than `user_id`");
                user.as_str()
            }
            (Some(user), _) | (None, Some(user)) => user.as_str(),
            (None, None) => &actor.user_id,
        };
        let user_id = errors.check("user_id", UserId::parse(owner));
        let currency = match &self.currency {
            None => Some(None),
            Some(code) => errors
                .check("currency", Currency::parse(code).map_err(|e| e.to_string()))
                .map(Some),
        };
        let item_currency = currency.map(|currency| currency.unwrap_or(default_currency));
        let items: Vec<Option<LineItem>> = self
            .items
            .iter()
            .enumerate()
            .map(|(index, item)| {
                item.0.to_line_item(
                    &format!("items[{index}]."),
                    item_currency,
                    catalog,
                    &mut errors,
                )
            })
            .collect();
        let shipping_address = self
            .shipping_address
            .as_ref()
            .map(|body| address(body, AddressType::Shipping, "shipping_address", &mut errors));
        let billing_address = match &self.billing_address {
            Some(billing) => Some(address(
                billing,
                AddressType::Billing,
                "billing_address",
                &mut errors,
            )),
            None => shipping_address.clone(),
        };
        let shipping_method = errors.check(
            "shipping_method",
            optional_text(self.shipping_method.as_deref(), 50),
        );
        let notes = errors.check("notes", optional_text(self.notes.as_deref(), 2000));
        let payment_method = errors.check(
            "payment_method",
            optional_text(self.payment_method.as_deref(), 50),
        );
        let coupon_code = errors.check(
            "coupon_code",
            optional_text(self.coupon_code.as_deref(), 64),
        );
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
                details: OrderDetails {
                    shipping_address: shipping_address.map_or(Some(None), |a| a.map(Some))?,
                    billing_address: billing_address.map_or(Some(None), |a| a.map(Some))?,
                    shipping_method: shipping_method?,
                    notes: notes?,
                    payment_method: payment_method?,
                },
                payment: payment?,
                coupon_code: coupon_code?,
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
        let product_id = errors.check(field("product_id"), ProductId::parse(&self.product_id.0));
        let variant_id = match &self.variant_id {
            None => Some(None),
            Some(variant) => errors
                .check(field("variant_id"), VariantId::parse(&variant.0))
                .map(Some),
        };
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
                price.to_money(currency).map_err(|e| e.to_string()),
            ),
        });
        let name = errors.check(field("name"), optional_text(self.name.as_deref(), 200));
        let sku = errors.check(field("sku"), optional_text(self.sku.as_deref(), 64));
        Some(LineItem {
            id: Uuid::now_v7(),
            product_id: product_id?,
            variant_id: variant_id?,
            name: name?,
            sku: sku?,
            quantity: quantity?,
            unit_price: unit_price?,
        })
    }
}

/// One of two names for the same field: either, or both if they agree.
fn either<'a>(
    preferred: Option<&'a str>,
    earlier: Option<&'a str>,
    field: String,
    errors: &mut Errors,
) -> Option<&'a str> {
    match (preferred, earlier) {
        (Some(a), Some(b)) if a.trim() != b.trim() => {
            errors.push(field, "is given twice, under both its names, differently");
            Some(a)
        }
        (Some(value), _) | (None, Some(value)) => Some(value),
        (None, None) => None,
    }
}

fn address(
    body: &AddressBody,
    expected: AddressType,
    prefix: &str,
    errors: &mut Errors,
) -> Option<Address> {
    if let Some(given) = &body.address_type {
        let matches = match expected {
            AddressType::Shipping => given.eq_ignore_ascii_case("shipping"),
            AddressType::Billing => given.eq_ignore_ascii_case("billing"),
        };
        if !matches {
            let wanted = match expected {
                AddressType::Shipping => "SHIPPING",
                AddressType::Billing => "BILLING",
            };
            errors.push(
                format!("{prefix}.address_type"),
                format!("must be `{wanted}` here"),
            );
        }
    }
    let line1 = either(
        body.address_line1.as_deref(),
        body.line1.as_deref(),
        format!("{prefix}.address_line1"),
        errors,
    );
    let line2 = either(
        body.address_line2.as_deref(),
        body.line2.as_deref(),
        format!("{prefix}.address_line2"),
        errors,
    );
    let region = either(
        body.state.as_deref(),
        body.region.as_deref(),
        format!("{prefix}.state"),
        errors,
    );
    let input = AddressInput {
        first_name: &body.first_name,
        last_name: &body.last_name,
        line1: line1.unwrap_or_default(),
        line2,
        city: &body.city,
        region,
        postal_code: &body.postal_code,
        country: &body.country,
        phone: body.phone.as_deref(),
        email: body.email.as_deref(),
    };
    Address::parse(&input)
        .map_err(|violations| {
            // The domain's names, as the technical design spells them.
            let renamed = violations
                .into_iter()
                .map(|mut violation| {
                    violation.field = match violation.field.as_str() {
                        "line1" => "address_line1".to_owned(),
                        "line2" => "address_line2".to_owned(),
                        "region" => "state".to_owned(),
                        other => other.to_owned(),
                    };
                    violation
                })
                .collect();
            errors.extend(prefix, renamed)
        })
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
                Some(offset @ 0..=10_000) => Ok(u32::try_from(offset).unwrap_or_default()),
                Some(_) => Err(format!(
                    "must be between 0 and {}; walk deeper with cursor",
                    crate::store::MAX_OFFSET
                )),
            },
        );
        let before = match self.cursor.as_deref() {
            None => Some(None),
            Some(cursor) => errors
                .check("query.cursor", super::cursor::decode(cursor))
                .map(Some),
        };
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
                before: before?,
            })
        })();
        errors.finish(filter)
    }
}

impl UpdateOrderBody {
    /// The shipment details, each checked.
    pub fn shipment(&self) -> Result<Shipment, Vec<FieldError>> {
        let mut errors = Errors::default();
        let carrier = errors.check("carrier", optional_text(self.carrier.as_deref(), 100));
        let tracking_number = errors.check(
            "tracking_number",
            optional_text(self.tracking_number.as_deref(), 100),
        );
        let shipment = carrier
            .zip(tracking_number)
            .map(|(carrier, tracking_number)| Shipment {
                carrier,
                tracking_number,
            });
        errors.finish(shipment)
    }
}
