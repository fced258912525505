//! How payments knows an order: it asks orders, the order's only authority.
//! (A charge the orders service asks for itself states the facts; see
//! `service::charge`.)
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
use platform::{auth::ServiceCredentials, client::ServiceClient, resilience::RetryPolicy};
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
    client: ServiceClient,
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
        let retry = RetryPolicy::new(
            config.retries as usize,
            Duration::from_millis(20),
            Duration::from_millis(500),
        );
        Ok(Self {
            client: ServiceClient::new(
                &config.url,
                Duration::from_millis(config.timeout_ms),
                credentials,
                retry,
            )?,
        })
    }

    /// The order, `None` if orders does not have it; an error when orders
    /// could not be asked (an idempotent read, retried).
    pub async fn order(&self, id: Uuid) -> anyhow::Result<Option<OrderFacts>> {
        let url = self.client.url(&["api", "v1", "orders", &id.to_string()])?;
        let response = self
            .client
            .send_idempotent(|http| http.get(url.clone()))
            .await
            .context("orders could not be asked")?;
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
