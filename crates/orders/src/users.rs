//! The User Service, asked whether a user exists before an order is placed
//! (SPEC-0003). Contract: `contracts/dependencies/user-service.yaml`.
//!
//! - `GET {url}/api/v1/users/{id}` with a service-to-service JWT;
//! - `200` → the user exists, `404` → it does not;
//! - anything else (5xx, timeout, refused connection) is retried a few times
//!   (the call is an idempotent GET), then reported as unavailable;
//! - a circuit breaker opens after consecutive failures, so a dead dependency
//!   fails fast (no waiting for timeouts) until a trial call succeeds.

use platform::{
    auth::AuthConfig,
    client::{Dependency, DependencyConfig, ServiceClient},
};

/// `user_service:` section of the orders configuration.
pub type UserServiceConfig = DependencyConfig;

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
        let client = ServiceClient::for_dependency(
            config,
            auth,
            Dependency {
                name: "user_service",
                audience: "users",
                subject: contracts::order::SERVICE_SUBJECT,
                scopes: &["users.read"],
                section: "user_service",
            },
        )?;
        Ok(client.map(|client| UserDirectory { client }))
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
