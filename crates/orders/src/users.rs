//! The User Service, asked whether a user exists before an order is placed
//! (SPEC-0003). Contract: `contracts/dependencies/user-service.yaml`.
//!
//! - `GET {url}/api/v1/users/{id}` with a service-to-service JWT;
//! - `200` → the user exists, `404` → it does not;
//! - anything else (5xx, timeout, refused connection) is retried a few times
//!   (the call is an idempotent GET), then reported as unavailable;
//! - a circuit breaker opens after consecutive failures, so a dead dependency
//!   fails fast (no waiting for timeouts) until a trial call succeeds.

use std::{
    sync::Mutex,
    time::{Duration, Instant},
};

use anyhow::Context;
use secrecy::SecretString;
use serde::Deserialize;

use crate::dependency::{self, Credentials};

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

/// The circuit: closed (calls go through), open until an instant (calls fail
/// fast), or half-open (one trial call decides).
#[derive(Debug, Clone, Copy)]
enum Circuit {
    Closed { failures: u32 },
    Open { until: Instant },
    HalfOpen,
}

pub struct UserDirectory {
    client: reqwest::Client,
    base: String,
    credentials: Credentials,
    retries: u32,
    failure_threshold: u32,
    open_for: Duration,
    circuit: Mutex<Circuit>,
}

impl UserDirectory {
    /// The directory, or `None` when no URL is configured.
    pub fn from_config(
        config: &UserServiceConfig,
        secret: Option<&SecretString>,
        issuer: &str,
    ) -> anyhow::Result<Option<UserDirectory>> {
        let Some(url) = &config.url else {
            return Ok(None);
        };
        let credentials = Credentials::new(
            config.service_token.as_ref(),
            secret,
            issuer,
            "users",
            &["users.read"],
        )?;
        Ok(Some(UserDirectory {
            client: reqwest::Client::builder()
                .timeout(Duration::from_millis(config.timeout_ms))
                .build()
                .context("building the User Service client")?,
            base: url.trim_end_matches('/').to_owned(),
            credentials,
            retries: config.retries,
            failure_threshold: config.failure_threshold.max(1),
            open_for: Duration::from_millis(config.open_ms),
            circuit: Mutex::new(Circuit::Closed { failures: 0 }),
        }))
    }

    /// Asks whether `user_id` exists.
    pub async fn check(&self, user_id: &str) -> Result<UserCheck, Unavailable> {
        self.admit()?;
        let outcome = self.call_with_retries(user_id).await;
        self.settle(outcome.is_ok());
        outcome
    }

    /// Fails fast while the circuit is open; lets one trial through after.
    fn admit(&self) -> Result<(), Unavailable> {
        let mut circuit = self.circuit.lock().unwrap_or_else(|p| p.into_inner());
        match *circuit {
            Circuit::Open { until } if Instant::now() < until => {
                Err(Unavailable("circuit open after repeated failures".into()))
            }
            Circuit::Open { .. } => {
                *circuit = Circuit::HalfOpen;
                Ok(())
            }
            Circuit::Closed { .. } | Circuit::HalfOpen => Ok(()),
        }
    }

    fn settle(&self, succeeded: bool) {
        let mut circuit = self.circuit.lock().unwrap_or_else(|p| p.into_inner());
        *circuit = match (*circuit, succeeded) {
            (_, true) => Circuit::Closed { failures: 0 },
            (Circuit::Closed { failures }, false) if failures + 1 < self.failure_threshold => {
                Circuit::Closed {
                    failures: failures + 1,
                }
            }
            (_, false) => {
                tracing::warn!(
                    open_ms = self.open_for.as_millis() as u64,
                    "User Service circuit opened"
                );
                Circuit::Open {
                    until: Instant::now() + self.open_for,
                }
            }
        };
    }

    async fn call_with_retries(&self, user_id: &str) -> Result<UserCheck, Unavailable> {
        let mut delay = Duration::from_millis(50);
        let mut last = Unavailable("not called".into());
        for attempt in 0..=self.retries {
            if attempt > 0 {
                tokio::time::sleep(delay).await;
                delay *= 2;
            }
            match self.call(user_id).await {
                Ok(check) => return Ok(check),
                Err(error) => last = error,
            }
        }
        Err(last)
    }

    async fn call(&self, user_id: &str) -> Result<UserCheck, Unavailable> {
        let url = dependency::url(&self.base, &["api", "v1", "users", user_id])
            .map_err(|error| Unavailable(error.to_string()))?;
        let token = self
            .credentials
            .token()
            .map_err(|error| Unavailable(format!("no service token: {error:#}")))?;
        let mut request = self.client.get(url).bearer_auth(token);
        if let Some(traceparent) = platform::telemetry::traceparent(&tracing::Span::current()) {
            request = request.header("traceparent", traceparent);
        }
        let response = request
            .send()
            .await
            .map_err(|error| Unavailable(format!("unreachable: {error}")))?;
        match response.status().as_u16() {
            200..=299 => Ok(UserCheck::Exists),
            404 => Ok(UserCheck::Unknown),
            status => Err(Unavailable(format!("answered {status}"))),
        }
    }
}
