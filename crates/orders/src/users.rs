//! The User Service, asked whether a user exists before an order is placed
//! (SPEC-0003). Contract: `contracts/dependencies/user-service.yaml`.
//!
//! - `GET {url}/api/v1/users/{id}` with a service-to-service JWT;
//! - `200` → the user exists, `404` → it does not;
//! - anything else (5xx, timeout, refused connection) is retried a few times
//!   (the call is an idempotent GET), then reported as unavailable;
//! - a circuit breaker opens after consecutive failures, so a dead dependency
//!   fails fast (no waiting for timeouts) until a trial call succeeds.

use std::time::Duration;

use platform::{
    auth::{AuthConfig, ServiceCredentials},
    client::ServiceClient,
    resilience::RetryPolicy,
};
use secrecy::SecretString;
use serde::Deserialize;

/// `user_service:` section of the orders configuration.
#[derive(Debug, Clone, Deserialize)]
pub struct UserServiceConfig {
    /// Base URL; unset turns user validation off.
    #[serde(default)]
    pub url: Option<String>,
    /// Per attempt.
    pub timeout_ms: u64,
    /// Extra attempts after a failed one.
    pub retries: u32,
    /// Consecutive failures that open the circuit…
    pub failure_threshold: u32,
    /// …for this long.
    pub open_ms: u64,
    /// A token for the User Service; minted (HS256, `users.read`, audience
    /// `users`) from `auth.hs256_secret` when unset (development).
    #[serde(default)]
    pub service_token: Option<SecretString>,
}

/// Whether the user exists.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UserCheck {
    Exists,
    Unknown,
}

#[derive(Debug, thiserror::Error)]
#[error("the User Service is unavailable: {0}")]
pub struct Unavailable(pub String);

pub struct UserDirectory {
    client: ServiceClient,
}

impl UserDirectory {
    /// The directory, or `None` when no URL is configured.
    pub fn from_config(
        config: &UserServiceConfig,
        auth: &AuthConfig,
    ) -> anyhow::Result<Option<UserDirectory>> {
        let Some(url) = &config.url else {
            return Ok(None);
        };
        let credentials = ServiceCredentials::resolve(
            config.service_token.as_ref(),
            auth,
            "users",
            crate::service::SYSTEM,
            &["users.read"],
            "user_service.service_token",
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
            "user_service",
            config.failure_threshold,
            Duration::from_millis(config.open_ms),
        );
        Ok(Some(UserDirectory { client }))
    }

    /// Asks whether `user_id` exists (an idempotent GET, retried).
    pub async fn check(&self, user_id: &str) -> Result<UserCheck, Unavailable> {
        let url = self
            .client
            .url(&["api", "v1", "users", user_id])
            .map_err(|error| Unavailable(error.to_string()))?;
        let response = self
            .client
            .send_idempotent(|http| http.get(url.clone()))
            .await
            .map_err(|error| Unavailable(error.to_string()))?;
        match response.status().as_u16() {
            200..=299 => Ok(UserCheck::Exists),
            404 => Ok(UserCheck::Unknown),
            status => Err(Unavailable(format!("answered {status}"))),
        }
    }
}
