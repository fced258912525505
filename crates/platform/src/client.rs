//! Calling another service over HTTP: one client shape for every dependency
//! (the User Service, the catalogue, payments, orders).
//!
//! Each call carries a service token and the current trace context; a
//! transport failure or a `5xx` is retried under a [`RetryPolicy`] (only
//! idempotent calls are sent through [`ServiceClient::send_idempotent`]);
//! with a [`CircuitBreaker`], a dead dependency fails fast instead of making
//! every request wait for its timeouts.

use std::time::Duration;

use anyhow::Context;

use crate::auth::ServiceCredentials;
use crate::resilience::{CircuitBreaker, RetryPolicy, Tripped, retry};

/// A dependency's base URL, credentials and failure policy.
pub struct ServiceClient {
    http: reqwest::Client,
    base: String,
    credentials: ServiceCredentials,
    retry: RetryPolicy,
    breaker: Option<CircuitBreaker>,
}

/// Why a dependency gave no usable answer (transport failure, `5xx`, open
/// circuit, no token).
#[derive(Debug, Clone, thiserror::Error)]
#[error("{reason}")]
pub struct Unreachable {
    pub reason: String,
    /// How long the dependency asked to be left alone (`Retry-After` in
    /// seconds on a `503`), if it said.
    pub retry_after: Option<Duration>,
}

impl Unreachable {
    fn new(reason: String) -> Self {
        Self {
            reason,
            retry_after: None,
        }
    }
}

impl ServiceClient {
    pub fn new(
        base: &str,
        timeout: Duration,
        credentials: ServiceCredentials,
        retry: RetryPolicy,
    ) -> anyhow::Result<Self> {
        reqwest::Url::parse(base).with_context(|| format!("{base} is not a URL"))?;
        Ok(Self {
            http: reqwest::Client::builder()
                .timeout(timeout)
                .build()
                .context("building an HTTP client")?,
            base: base.trim_end_matches('/').to_owned(),
            credentials,
            retry,
            breaker: None,
        })
    }

    /// Opens a circuit after `threshold` consecutive failed calls (each
    /// with its retries), for `open_for`.
    pub fn with_breaker(mut self, name: &'static str, threshold: u32, open_for: Duration) -> Self {
        self.breaker = Some(CircuitBreaker::new(name, threshold, open_for));
        self
    }

    /// `base` + path segments, each percent-encoded.
    pub fn url(&self, segments: &[&str]) -> Result<reqwest::Url, Unreachable> {
        let mut url =
            reqwest::Url::parse(&self.base).map_err(|e| Unreachable::new(e.to_string()))?;
        url.path_segments_mut()
            .map_err(|()| Unreachable::new(format!("{} cannot have paths", self.base)))?
            .pop_if_empty()
            .extend(segments);
        Ok(url)
    }

    /// Sends the request `build` makes, once.
    pub async fn send(
        &self,
        build: impl Fn(&reqwest::Client) -> reqwest::RequestBuilder,
    ) -> Result<reqwest::Response, Unreachable> {
        let once = self.attempt(&build);
        match &self.breaker {
            Some(breaker) => breaker.call(once).await.map_err(flatten),
            None => once.await,
        }
    }

    /// Sends the request `build` makes (built again for each attempt),
    /// retrying transport failures and `5xx`: for calls that are safe to
    /// repeat.
    pub async fn send_idempotent(
        &self,
        build: impl Fn(&reqwest::Client) -> reqwest::RequestBuilder,
    ) -> Result<reqwest::Response, Unreachable> {
        let retried = retry(self.retry, || self.attempt(&build), |_| true);
        match &self.breaker {
            Some(breaker) => breaker.call(retried).await.map_err(flatten),
            None => retried.await,
        }
    }

    async fn attempt(
        &self,
        build: &impl Fn(&reqwest::Client) -> reqwest::RequestBuilder,
    ) -> Result<reqwest::Response, Unreachable> {
        let token = self
            .credentials
            .token()
            .map_err(|error| Unreachable::new(format!("no service token: {error:#}")))?;
        let mut request = build(&self.http)
            .bearer_auth(token)
            .build()
            .map_err(|error| Unreachable::new(format!("unsendable request: {error}")))?;
        // The current trace, unless the caller continues another (a job
        // carries the trace of the request that decided it).
        if !request.headers().contains_key("traceparent")
            && let Some(traceparent) = crate::telemetry::traceparent(&tracing::Span::current())
            && let Ok(value) = reqwest::header::HeaderValue::from_str(&traceparent)
        {
            request.headers_mut().insert("traceparent", value);
        }
        match self.http.execute(request).await {
            Ok(response) if response.status().is_server_error() => Err(Unreachable {
                reason: format!("answered {}", response.status().as_u16()),
                retry_after: retry_after(response.headers()),
            }),
            Ok(response) => Ok(response),
            Err(error) if error.is_timeout() => {
                Err(Unreachable::new(format!("timed out: {error}")))
            }
            Err(error) => Err(Unreachable::new(format!("unreachable: {error}"))),
        }
    }
}

/// A response's `Retry-After` in seconds (an HTTP date is not honoured).
pub fn retry_after(headers: &reqwest::header::HeaderMap) -> Option<Duration> {
    headers
        .get(reqwest::header::RETRY_AFTER)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.trim().parse::<u64>().ok())
        .map(Duration::from_secs)
}

fn flatten(tripped: Tripped<Unreachable>) -> Unreachable {
    match tripped {
        Tripped::Open => Unreachable::new("circuit open after repeated failures".to_owned()),
        Tripped::Failed(error) => error,
    }
}

/// The configuration section of an optional dependency (`user_service:`,
/// `catalog:`): where it is, how long to wait, how often to retry, when to
/// stop calling it for a while, and the token to call it with.
#[derive(Debug, Clone, serde::Deserialize)]
pub struct DependencyConfig {
    /// Base URL; unset turns the dependency off.
    #[serde(default)]
    pub url: Option<String>,
    /// Per attempt.
    pub timeout_ms: u64,
    /// Extra attempts after a failed one (jittered, from 50 ms doubling).
    pub retries: u32,
    /// Consecutive failed calls that open the circuit…
    #[serde(default = "default_failure_threshold")]
    pub failure_threshold: u32,
    /// …for this long.
    #[serde(default = "default_open_ms")]
    pub open_ms: u64,
    /// A token for the dependency; minted from `auth.hs256_secret` when
    /// unset (development only).
    #[serde(default)]
    pub service_token: Option<secrecy::SecretString>,
}

fn default_failure_threshold() -> u32 {
    5
}

fn default_open_ms() -> u64 {
    10_000
}

/// Who a dependency's client is: the audience and scopes of its tokens,
/// the caller's subject, and the settings section it is configured in.
#[derive(Debug, Clone, Copy)]
pub struct Dependency {
    pub name: &'static str,
    pub audience: &'static str,
    pub subject: &'static str,
    pub scopes: &'static [&'static str],
    /// The settings section, for error messages (`user_service`).
    pub section: &'static str,
}

impl ServiceClient {
    /// The client of an optional dependency, or `None` when its URL is not
    /// configured: retries of idempotent calls and a circuit breaker.
    pub fn for_dependency(
        config: &DependencyConfig,
        auth: &crate::auth::AuthConfig,
        dependency: Dependency,
    ) -> anyhow::Result<Option<ServiceClient>> {
        let Some(url) = &config.url else {
            return Ok(None);
        };
        let credentials = ServiceCredentials::resolve(
            config.service_token.as_ref(),
            auth,
            dependency.audience,
            dependency.subject,
            dependency.scopes,
            &format!("{}.service_token", dependency.section),
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
            dependency.name,
            config.failure_threshold,
            Duration::from_millis(config.open_ms),
        );
        Ok(Some(client))
    }
}
