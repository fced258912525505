//! The Catalog Service: products (price, name and SKU are snapshotted into
//! orders) and stock reservations. Contract:
//! `contracts/dependencies/catalog-service.yaml`.
//!
//! A reservation is identified by the order id, so reserving (PUT, with the
//! order's full quantities) and releasing (DELETE; 404 means already released)
//! are idempotent and safe to retry.

use std::time::Duration;

use anyhow::Context;
use secrecy::SecretString;
use serde::Deserialize;
use serde_json::json;
use uuid::Uuid;

use crate::dependency::{self, Credentials};

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
    /// A token with `catalog.read catalog.write` (audience `catalog`); minted
    /// from `auth.hs256_secret` when unset (development).
    #[serde(default)]
    pub service_token: Option<SecretString>,
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
    client: reqwest::Client,
    base: String,
    credentials: Credentials,
    retries: u32,
}

#[derive(Deserialize)]
struct ShortageBody {
    items: Vec<Shortage>,
}

impl Catalog {
    pub fn from_config(
        config: &CatalogConfig,
        secret: Option<&SecretString>,
        issuer: &str,
    ) -> anyhow::Result<Option<Catalog>> {
        let Some(url) = &config.url else {
            return Ok(None);
        };
        Ok(Some(Catalog {
            client: reqwest::Client::builder()
                .timeout(Duration::from_millis(config.timeout_ms))
                .build()
                .context("building the Catalog client")?,
            base: url.trim_end_matches('/').to_owned(),
            credentials: Credentials::new(
                config.service_token.as_ref(),
                secret,
                issuer,
                "catalog",
                &["catalog.read", "catalog.write"],
            )?,
            retries: config.retries,
        }))
    }

    /// Calls `send` until it gets an answer, retrying transport failures and
    /// 5xx (every call here is idempotent).
    async fn call(
        &self,
        send: impl Fn(&reqwest::Client, String) -> reqwest::RequestBuilder,
    ) -> Result<reqwest::Response, Unavailable> {
        let mut delay = Duration::from_millis(50);
        let mut last = String::new();
        for attempt in 0..=self.retries {
            if attempt > 0 {
                tokio::time::sleep(delay).await;
                delay *= 2;
            }
            let token = self
                .credentials
                .token()
                .map_err(|error| Unavailable(format!("no service token: {error:#}")))?;
            match send(&self.client, token).send().await {
                Ok(response) if !response.status().is_server_error() => return Ok(response),
                Ok(response) => last = format!("answered {}", response.status()),
                Err(error) => last = format!("unreachable: {error}"),
            }
        }
        Err(Unavailable(last))
    }

    /// The product (or its variant: name, SKU and price are the
    /// variant's), or `None` if the catalogue does not have it.
    pub async fn product(
        &self,
        product_id: &str,
        variant_id: Option<&str>,
    ) -> Result<Option<Product>, Unavailable> {
        let url = match variant_id {
            None => dependency::url(&self.base, &["api", "v1", "products", product_id]),
            Some(variant) => dependency::url(
                &self.base,
                &["api", "v1", "products", product_id, "variants", variant],
            ),
        }
        .map_err(|error| Unavailable(error.to_string()))?;
        let response = self
            .call(|client, token| client.get(url.clone()).bearer_auth(token))
            .await?;
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
        let url = dependency::url(
            &self.base,
            &["api", "v1", "reservations", &order.to_string()],
        )
        .map_err(|error| Unavailable(error.to_string()))?;
        let body = json!({ "items": lines });
        let response = self
            .call(|client, token| client.put(url.clone()).bearer_auth(token).json(&body))
            .await?;
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
        let url = dependency::url(
            &self.base,
            &["api", "v1", "reservations", &order.to_string()],
        )
        .map_err(|error| Unavailable(error.to_string()))?;
        let response = self
            .call(|client, token| client.delete(url.clone()).bearer_auth(token))
            .await?;
        match response.status().as_u16() {
            200..=299 | 404 => Ok(()),
            status => Err(Unavailable(format!("answered {status}"))),
        }
    }
}
