//! The payments service as orders calls it: the charge, capture and refund
//! requests its jobs send (`POST /api/v1/payments…`), once per attempt (the
//! job layer retries).

use std::time::Duration;

use contracts::payment::CaptureMethod;
use platform::jobs::Outcome;
use platform::{auth::ServiceCredentials, client::ServiceClient, resilience::RetryPolicy};
use secrecy::SecretString;
use serde::Deserialize;

/// `payments:` section of the orders configuration.
#[derive(Debug, Clone, Deserialize)]
pub struct PaymentsClientConfig {
    /// Base URL of the payments service.
    pub url: String,
    pub timeout_ms: u64,
    /// A token for payments with `payments.write payments.admin`. When unset,
    /// one is minted with `auth.hs256_secret` (development).
    #[serde(default)]
    pub service_token: Option<SecretString>,
    /// The shop's capture policy: `automatic` (the money is taken when the
    /// order is placed) or `manual` (held then, taken when it ships).
    #[serde(default)]
    pub capture: CaptureMethod,
}

/// Scopes orders needs at payments: charge for users, ask for refunds.
pub const SCOPES: &[&str] = &["payments.write", "payments.admin"];

/// Payments, called once per attempt: the job layer retries.
pub struct PaymentsClient {
    /// The shop's capture policy, sent with every charge.
    pub capture: CaptureMethod,
    client: ServiceClient,
}

impl PaymentsClient {
    pub fn new(
        config: &PaymentsClientConfig,
        credentials: ServiceCredentials,
    ) -> anyhow::Result<Self> {
        let client = ServiceClient::new(
            &config.url,
            Duration::from_millis(config.timeout_ms),
            credentials,
            RetryPolicy::none(),
        )?;
        Ok(Self {
            capture: config.capture,
            client,
        })
    }

    /// POSTs to payments; the status and the problem `type`, or the retry
    /// when payments could not be reached (transport failure) or asked to be
    /// called back later (`429`/`503` with `Retry-After`).
    pub async fn post(
        &self,
        path: &[&str],
        key: Option<&str>,
        body: &(impl serde::Serialize + Sync),
        traceparent: Option<&str>,
    ) -> Result<(u16, String), Outcome> {
        let url = self
            .client
            .url(path)
            .map_err(|error| Outcome::Retry(error.to_string()))?;
        let response = self
            .client
            .send(|http| {
                let mut call = http.post(url.clone()).json(body);
                if let Some(key) = key {
                    call = call.header("Idempotency-Key", key);
                }
                if let Some(traceparent) = traceparent {
                    call = call.header("traceparent", traceparent);
                }
                call
            })
            .await
            .map_err(|error| match error.retry_after {
                Some(after) => Outcome::RetryAfter(after, format!("payments {error}")),
                None => Outcome::Retry(format!("payments {error}")),
            })?;
        let status = response.status().as_u16();
        if response.status().is_success() {
            return Ok((status, String::new()));
        }
        // Overloaded or limited, payments says when to come back
        // (`Retry-After` in seconds): the job waits that long, not less.
        let retry_after = platform::client::retry_after(response.headers());
        let problem: serde_json::Value = response.json().await.unwrap_or_default();
        let kind = problem["type"].as_str().unwrap_or_default();
        if let (429 | 503, Some(after)) = (status, retry_after) {
            return Err(Outcome::RetryAfter(
                after,
                format!("payments answered {status} {kind}"),
            ));
        }
        // A provider's refusal says why (`provider_declined: capture_declined`).
        Ok((
            status,
            match problem["reason"].as_str() {
                Some(reason) => format!("{kind}: {reason}"),
                None => kind.to_owned(),
            },
        ))
    }
}
