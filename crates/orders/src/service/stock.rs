//! The catalogue's part in placing and editing an order (a saga step):
//! prices are the catalogue's, stock is reserved before the order is
//! written and released if it is not, or when it is cancelled.

use futures_util::StreamExt;
use platform::db;

use super::{OrderError, Orders, jobs};
use crate::catalog::{Catalog, Reservation, ReservedLine};
use crate::domain::{Currency, LineItem, Money, OrderId, Violation};
use crate::store::{JOBS, StoreError};

/// Catalogue look-ups in flight at once for one order.
const CATALOG_CONCURRENCY: usize = 8;

impl Orders {
    /// Releases a reservation at once, or records it for the job worker.
    pub(super) async fn release_now_or_later(&self, id: OrderId) {
        let Some(catalog) = &self.catalog else {
            return;
        };
        if catalog.release(id.0).await.is_ok() {
            return;
        }
        let recorded = async {
            let conn = db::connection(&self.pool).await?;
            platform::jobs::enqueue(&conn, JOBS, &jobs::release_stock(id.0))
                .await
                .map_err(StoreError::from)?;
            Ok::<_, OrderError>(())
        }
        .await;
        match recorded {
            Ok(()) => self.jobs.notify_one(),
            Err(error) => {
                tracing::error!(order.id = %id, error.message = %error, "could not release or record a stock reservation")
            }
        }
    }
}

/// Replaces each line's price, name and SKU with the catalogue's (client
/// values are never trusted when a catalogue is configured).
///
/// The order's currency is `currency`, or else the first product's (None
/// only without items); a product sold in another is refused.
pub(super) async fn snapshot(
    catalog: &Catalog,
    currency: Option<Currency>,
    items: Vec<LineItem>,
) -> Result<(Option<Currency>, Vec<LineItem>), OrderError> {
    // At most CATALOG_CONCURRENCY look-ups in flight per order.
    let products: Vec<_> = futures_util::stream::iter(items.iter().map(|item| {
        catalog.product(
            item.product_id.as_str(),
            item.variant_id.as_ref().map(|v| v.as_str()),
        )
    }))
    .buffered(CATALOG_CONCURRENCY)
    .collect()
    .await;
    let mut currency = currency;
    let mut unknown = Vec::new();
    let mut violations = Vec::new();
    let mut priced = Vec::with_capacity(items.len());
    for (index, (mut item, product)) in items.into_iter().zip(products).enumerate() {
        match product.map_err(|error| OrderError::CatalogUnavailable(error.to_string()))? {
            None => unknown.push((
                format!(
                    "items[{index}].{}",
                    if item.variant_id.is_some() {
                        "variant_id"
                    } else {
                        "product_id"
                    }
                ),
                match &item.variant_id {
                    Some(variant) => format!("{} variant {variant}", item.product_id),
                    None => item.product_id.to_string(),
                },
            )),
            Some(product) => {
                let price = Currency::parse(&product.currency)
                    .and_then(|product_currency| Money::parse(&product.price, product_currency))
                    .map_err(|error| {
                        OrderError::CatalogUnavailable(format!(
                            "unreadable price of {}: {error}",
                            product.id
                        ))
                    })?;
                let currency = *currency.get_or_insert(price.currency());
                if price.currency() == currency {
                    item.unit_price = price;
                    item.name = Some(product.name);
                    item.sku = product.sku;
                } else {
                    violations.push(Violation::new(
                        format!("items[{index}].product_id"),
                        format!(
                            "is sold in {}, the order is in {currency}",
                            price.currency()
                        ),
                    ));
                }
            }
        }
        priced.push(item);
    }
    if !unknown.is_empty() {
        return Err(OrderError::ProductsNotFound(unknown));
    }
    if !violations.is_empty() {
        return Err(OrderError::Invalid(violations));
    }
    Ok((currency, priced))
}

/// Reserves every line's quantity for the order, all or nothing.
pub(super) async fn reserve(
    catalog: &Catalog,
    id: OrderId,
    items: &[LineItem],
) -> Result<(), OrderError> {
    let lines: Vec<ReservedLine<'_>> = items
        .iter()
        .map(|item| ReservedLine {
            product_id: item.product_id.as_str(),
            variant_id: item.variant_id.as_ref().map(|v| v.as_str()),
            quantity: item.quantity.get(),
        })
        .collect();
    match catalog.reserve(id.0, &lines).await {
        Ok(Reservation::Reserved) => Ok(()),
        Ok(Reservation::Insufficient(shortages)) => Err(OrderError::InsufficientStock(shortages)),
        Err(error) => Err(OrderError::CatalogUnavailable(error.to_string())),
    }
}
