//! How payments knows an order: it asks orders, the order's only authority.
//!
//! Before a charge, payments reads the order (`GET /api/v1/orders/{id}` with
//! a service token holding `orders.read orders.read_all`) and charges only
//! what [`crate::domain::check_payable`] allows. There is no copy of orders
//! inside payments to drift out of date, and an order is visible the moment
//! orders has committed it, so the dispatcher's call right after creation is
//! never refused for being early. What can still change between this read
//! and the charge (a cancellation, an item edit) is caught by orders when the
//! outcome arrives: it accepts only a charge of its current total, and any
//! other successful charge is refunded.

use std::time::Duration;

use anyhow::Context;
use contracts::money::{Currency, Money};
use contracts::order::OrderStatus;
use platform::auth::ServiceCredentials;
use secrecy::SecretString;
use serde::Deserialize;
use uuid::Uuid;

use crate::domain::OrderFacts;

/// `orders:` section of the payments configuration.
#[derive(Debug, Clone, Deserialize)]
pub struct OrdersClientConfig {
    /// Base URL of the orders service.
    pub url: String,
    pub timeout_ms: u64,
    /// Extra attempts of the (idempotent) read when orders fails.
    pub retries: u32,
    /// A token for orders with `orders.read orders.read_all`; minted from
    /// `auth.hs256_secret` when unset (development).
    #[serde(default)]
    pub service_token: Option<SecretString>,
}

/// Scopes payments needs at orders: read any order, change none.
pub const SCOPES: &[&str] = &["orders.read", "orders.read_all"];

pub struct OrdersClient {
    client: reqwest::Client,
    base: String,
    credentials: ServiceCredentials,
    retries: u32,
}

/// Only what the payability rule needs of an order.
#[derive(Debug, Deserialize)]
struct OrderView {
    id: Uuid,
    user_id: String,
    status: OrderStatus,
    currency: String,
    total: String,
}

impl OrdersClient {
    pub fn new(
        config: &OrdersClientConfig,
        credentials: ServiceCredentials,
    ) -> anyhow::Result<Self> {
        Ok(Self {
            client: reqwest::Client::builder()
                .timeout(Duration::from_millis(config.timeout_ms))
                .build()
                .context("building the orders client")?,
            base: config.url.trim_end_matches('/').to_owned(),
            credentials,
            retries: config.retries,
        })
    }

    /// The order, `None` if orders does not have it; an error when orders
    /// could not be asked.
    pub async fn order(&self, id: Uuid) -> anyhow::Result<Option<OrderFacts>> {
        let mut last = None;
        for attempt in 0..=self.retries {
            if attempt > 0 {
                tokio::time::sleep(platform::jobs::backoff(
                    i32::try_from(attempt).unwrap_or(1),
                    Duration::from_millis(20),
                    Duration::from_millis(500),
                ))
                .await;
            }
            match self.fetch(id).await {
                Ok(found) => return Ok(found),
                Err(error) => last = Some(error),
            }
        }
        Err(last.unwrap_or_else(|| anyhow::anyhow!("orders was not asked")))
    }

    async fn fetch(&self, id: Uuid) -> anyhow::Result<Option<OrderFacts>> {
        let response = self
            .client
            .get(format!("{}/api/v1/orders/{id}", self.base))
            .bearer_auth(self.credentials.token()?)
            .send()
            .await
            .context("orders is unreachable")?;
        match response.status().as_u16() {
            200 => {}
            404 => return Ok(None),
            status => anyhow::bail!("orders answered {status}"),
        }
        let view: OrderView = response.json().await.context("unreadable order")?;
        let currency = Currency::parse(&view.currency)?;
        Ok(Some(OrderFacts {
            id: view.id,
            user_id: view.user_id,
            status: view.status,
            total: Money::parse(&view.total, currency)?,
        }))
    }
}
