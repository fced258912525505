//! The Catalog Service: products (price, name and SKU are snapshotted into
//! orders) and stock reservations. Contract:
//! `contracts/dependencies/catalog-service.yaml`.
//!
//! A reservation is identified by the order id, so reserving (PUT, with the
//! order's full quantities) and releasing (DELETE; 404 means already released)
//! are idempotent and safe to retry.

use platform::{
    auth::AuthConfig,
    client::{Dependency, DependencyConfig, ServiceClient},
};
use serde::Deserialize;
use serde_json::json;
use uuid::Uuid;

/// `catalog:` section of the orders configuration: unset `url` means
/// client-sent prices are accepted and no stock is reserved.
pub type CatalogConfig = DependencyConfig;

/// A product as the catalogue describes it.
#[derive(Debug, Clone, Deserialize)]
pub struct Product {
    pub id: String,
    pub name: String,
    #[serde(default)]
    pub sku: Option<String>,
    /// Decimal string in `currency`.
    pub price: String,
    pub currency: String,
}

/// A line to reserve.
#[derive(Debug, Clone, Copy, serde::Serialize)]
pub struct ReservedLine<'a> {
    pub product_id: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub variant_id: Option<&'a str>,
    pub quantity: u32,
}

/// A line the catalogue cannot supply.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, serde::Serialize)]
pub struct Shortage {
    pub product_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variant_id: Option<String>,
    pub requested: u64,
    pub available: u64,
}

#[derive(Debug)]
pub enum Reservation {
    Reserved,
    Insufficient(Vec<Shortage>),
}

#[derive(Debug, thiserror::Error)]
#[error("the Catalog Service is unavailable: {0}")]
pub struct Unavailable(pub String);

pub struct Catalog {
    client: ServiceClient,
}

#[derive(Deserialize)]
struct ShortageBody {
    items: Vec<Shortage>,
}

impl Catalog {
    pub fn from_config(
        config: &CatalogConfig,
        auth: &AuthConfig,
    ) -> anyhow::Result<Option<Catalog>> {
        let client = ServiceClient::for_dependency(
            config,
            auth,
            Dependency {
                name: "catalog",
                audience: "catalog",
                subject: contracts::order::SERVICE_SUBJECT,
                scopes: &["catalog.read", "catalog.write"],
                section: "catalog",
            },
        )?;
        Ok(client.map(|client| Catalog { client }))
    }

    fn url(&self, segments: &[&str]) -> Result<reqwest::Url, Unavailable> {
        self.client
            .url(segments)
            .map_err(|error| Unavailable(error.to_string()))
    }

    /// Every call here is idempotent (a reservation is keyed by its order).
    async fn call(
        &self,
        send: impl Fn(&reqwest::Client) -> reqwest::RequestBuilder,
    ) -> Result<reqwest::Response, Unavailable> {
        self.client
            .send_idempotent(send)
            .await
            .map_err(|error| Unavailable(error.to_string()))
    }

    /// The product (or its variant: name, SKU and price are the
    /// variant's), or `None` if the catalogue does not have it.
    pub async fn product(
        &self,
        product_id: &str,
        variant_id: Option<&str>,
    ) -> Result<Option<Product>, Unavailable> {
        let url = match variant_id {
            None => self.url(&["api", "v1", "products", product_id])?,
            Some(variant) => {
                self.url(&["api", "v1", "products", product_id, "variants", variant])?
            }
        };
        let response = self.call(|http| http.get(url.clone())).await?;
        match response.status().as_u16() {
            200..=299 => response
                .json()
                .await
                .map(Some)
                .map_err(|error| Unavailable(format!("unreadable product: {error}"))),
            404 => Ok(None),
            status => Err(Unavailable(format!("answered {status}"))),
        }
    }

    /// Reserves (or re-reserves) `lines` for `order`, all or nothing.
    pub async fn reserve(
        &self,
        order: Uuid,
        lines: &[ReservedLine<'_>],
    ) -> Result<Reservation, Unavailable> {
        let url = self.url(&["api", "v1", "reservations", &order.to_string()])?;
        let body = json!({ "items": lines });
        let response = self.call(|http| http.put(url.clone()).json(&body)).await?;
        match response.status().as_u16() {
            200..=299 => Ok(Reservation::Reserved),
            409 => {
                let shortage: ShortageBody = response
                    .json()
                    .await
                    .map_err(|error| Unavailable(format!("unreadable shortage: {error}")))?;
                Ok(Reservation::Insufficient(shortage.items))
            }
            status => Err(Unavailable(format!("answered {status}"))),
        }
    }

    /// Releases `order`'s reservation (a missing one counts as released).
    pub async fn release(&self, order: Uuid) -> Result<(), Unavailable> {
        let url = self.url(&["api", "v1", "reservations", &order.to_string()])?;
        let response = self.call(|http| http.delete(url.clone())).await?;
        match response.status().as_u16() {
            200..=299 | 404 => Ok(()),
            status => Err(Unavailable(format!("answered {status}"))),
        }
    }
}
