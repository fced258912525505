//! The Catalog Service: products (price, name and SKU are snapshotted into
//! orders) and stock reservations. Contract:
//! `contracts/dependencies/catalog-service.yaml`.
//!
//! A reservation is identified by the order id, so reserving (PUT, with the
//! order's full quantities) and releasing (DELETE; 404 means already released)
//! are idempotent and safe to retry.

use std::time::Duration;

use platform::{
    auth::{AuthConfig, ServiceCredentials},
    client::ServiceClient,
    resilience::RetryPolicy,
};
use secrecy::SecretString;
use serde::Deserialize;
use serde_json::json;
use uuid::Uuid;

/// `catalog:` section of the orders configuration.
#[derive(Debug, Clone, Deserialize)]
pub struct CatalogConfig {
    /// Base URL; unset means client-sent prices are accepted and no stock is
    /// reserved.
    #[serde(default)]
    pub url: Option<String>,
    pub timeout_ms: u64,
    /// Extra attempts for idempotent calls (all of them are).
    pub retries: u32,
    /// Consecutive failed calls that open the circuit…
    #[serde(default = "default_failure_threshold")]
    pub failure_threshold: u32,
    /// …for this long.
    #[serde(default = "default_open_ms")]
    pub open_ms: u64,
    /// A token with `catalog.read catalog.write` (audience `catalog`); minted
    /// from `auth.hs256_secret` when unset (development).
    #[serde(default)]
    pub service_token: Option<SecretString>,
}

fn default_failure_threshold() -> u32 {
    5
}

fn default_open_ms() -> u64 {
    10_000
}

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
        let Some(url) = &config.url else {
            return Ok(None);
        };
        let credentials = ServiceCredentials::resolve(
            config.service_token.as_ref(),
            auth,
            "catalog",
            crate::service::SYSTEM,
            &["catalog.read", "catalog.write"],
            "catalog.service_token",
        )?;
        let retry = RetryPolicy::new(
            config.retries as usize,
            Duration::from_millis(50),
            Duration::from_millis(800),
        );
        let client = ServiceClient::new(
            url,
            Duration::from_millis(config.timeout_ms),
            credentials,
            retry,
        )?
        .with_breaker(
            "catalog",
            config.failure_threshold,
            Duration::from_millis(config.open_ms),
        );
        Ok(Some(Catalog { client }))
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
