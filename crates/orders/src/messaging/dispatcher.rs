//! The payment dispatcher: turns durable payment requests into
//! `POST /api/v1/payments` calls.
//!
//! A request is written in the transaction that places the order. The
//! dispatcher picks due requests (`FOR UPDATE SKIP LOCKED`, so several
//! instances share the work), calls payments with a service token and an
//! `Idempotency-Key` derived from the order and attempt, and:
//! - on an answer (`201`, or `409 payment_exists`) marks it sent — the outcome
//!   arrives as a `payment.*` event;
//! - when payments is down, slow, or answers 5xx, retries later with
//!   exponential back-off (never giving up silently);
//! - when payments refuses the request itself (`400`/`422`), marks it failed
//!   and records `order.payment_failed` in the order's history.

use std::{sync::Arc, time::Duration};

use anyhow::Context;
use diesel_async::AsyncConnection;
use futures_util::future::join_all;
use platform::{auth, db::PgPool};
use secrecy::SecretString;
use serde::Deserialize;
use serde_json::json;
use time::OffsetDateTime;
use tokio::sync::Notify;

use crate::domain::{Currency, Money, OrderId};
use crate::service::Orders;
use crate::store::{self, PaymentRequest};

/// `payments:` section of the orders configuration.
#[derive(Debug, Clone, Deserialize)]
pub struct PaymentsClientConfig {
    /// Base URL of the payments service.
    pub url: String,
    pub timeout_ms: u64,
    /// Safety-net poll interval (new requests wake the dispatcher at once).
    pub poll_ms: u64,
    /// Longest wait between two attempts of one request.
    pub max_backoff_ms: u64,
    /// A token for payments with `payments.write payments.admin`. When unset,
    /// one is minted with `auth.hs256_secret` (development).
    #[serde(default)]
    pub service_token: Option<SecretString>,
}

/// How the dispatcher authenticates to payments.
#[derive(Clone)]
pub enum ServiceCredentials {
    Static(SecretString),
    /// Mint short-lived HS256 tokens (development).
    Minted {
        secret: SecretString,
        issuer: String,
    },
}

impl ServiceCredentials {
    fn token(&self) -> anyhow::Result<String> {
        use secrecy::ExposeSecret;
        match self {
            ServiceCredentials::Static(token) => Ok(token.expose_secret().to_owned()),
            ServiceCredentials::Minted { secret, issuer } => auth::mint_hs256(
                secret,
                issuer,
                &["payments".to_owned()],
                "svc-orders",
                &["payments.write", "payments.admin"],
                300,
            ),
        }
    }
}

/// Requests claimed and sent concurrently per round.
const BATCH: i64 = 128;

pub struct Dispatcher {
    pub pool: PgPool,
    pub orders: Arc<Orders>,
    pub client: reqwest::Client,
    pub config: PaymentsClientConfig,
    pub credentials: ServiceCredentials,
    pub wake: Arc<Notify>,
}

enum Sent {
    Accepted,
    RetryLater(String),
    Refused(String),
}

impl Dispatcher {
    pub fn new(
        pool: PgPool,
        orders: Arc<Orders>,
        config: PaymentsClientConfig,
        credentials: ServiceCredentials,
        wake: Arc<Notify>,
    ) -> anyhow::Result<Self> {
        let client = reqwest::Client::builder()
            .timeout(Duration::from_millis(config.timeout_ms))
            .build()
            .context("building the payments client")?;
        Ok(Self {
            pool,
            orders,
            client,
            config,
            credentials,
            wake,
        })
    }

    /// Dispatches forever.
    pub async fn run(self) {
        let poll = Duration::from_millis(self.config.poll_ms);
        loop {
            match self.dispatch_due().await {
                Ok(0) => {
                    tokio::select! {
                        () = self.wake.notified() => {}
                        () = tokio::time::sleep(poll) => {}
                    }
                }
                Ok(_) => {}
                Err(error) => {
                    tracing::warn!(error.message = %format!("{error:#}"), "payment dispatch failed");
                    tokio::time::sleep(poll).await;
                }
            }
        }
    }

    /// Sends the due requests concurrently; returns how many were handled.
    async fn dispatch_due(&self) -> anyhow::Result<usize> {
        let mut conn = platform::db::connection(&self.pool).await?;
        let (handled, refused) = conn
            .transaction(
                async |conn| -> anyhow::Result<(usize, Vec<(OrderId, String)>)> {
                    let due =
                        store::lock_due_payment_requests(conn, OffsetDateTime::now_utc(), BATCH)
                            .await?;
                    let outcomes = join_all(due.iter().map(|request| self.send(request))).await;
                    let mut refused = Vec::new();
                    let updated: Vec<PaymentRequest> = due
                        .into_iter()
                        .zip(outcomes)
                        .map(|(request, outcome)| self.settle(request, outcome, &mut refused))
                        .collect();
                    store::update_payment_requests(conn, &updated).await?;
                    Ok((updated.len(), refused))
                },
            )
            .await?;
        for (order_id, reason) in refused {
            self.orders.record_payment_refused(order_id, reason).await?;
        }
        Ok(handled)
    }

    /// The request's next state after an attempt.
    fn settle(
        &self,
        mut request: PaymentRequest,
        outcome: Sent,
        refused: &mut Vec<(OrderId, String)>,
    ) -> PaymentRequest {
        request.tries += 1;
        request.updated_at = OffsetDateTime::now_utc();
        match outcome {
            Sent::Accepted => {
                request.state = "sent".to_owned();
                request.token = None;
                request.last_error = None;
            }
            Sent::RetryLater(error) => {
                let backoff = self.backoff(request.tries);
                tracing::warn!(
                    order.id = %request.order_id,
                    payment.attempt = request.attempt,
                    tries = request.tries,
                    retry_in_ms = backoff.whole_milliseconds(),
                    error.message = %error,
                    "payments unavailable; will retry"
                );
                request.next_attempt_at = request.updated_at + backoff;
                request.last_error = Some(error);
            }
            Sent::Refused(reason) => {
                request.state = "failed".to_owned();
                request.token = None;
                request.last_error = Some(reason.clone());
                refused.push((OrderId(request.order_id), reason));
            }
        }
        request
    }

    fn backoff(&self, tries: i32) -> time::Duration {
        let exponent = u32::try_from(tries.clamp(1, 16) - 1).unwrap_or(0);
        let millis = 200_u64
            .saturating_mul(1 << exponent)
            .min(self.config.max_backoff_ms);
        time::Duration::milliseconds(i64::try_from(millis).unwrap_or(i64::MAX))
    }

    async fn send(&self, request: &PaymentRequest) -> Sent {
        let Some(token) = &request.token else {
            return Sent::Refused("the payment token is gone".into());
        };
        let amount = match Currency::parse(&request.currency)
            .and_then(|currency| Money::from_minor(request.amount_minor, currency))
        {
            Ok(amount) => amount,
            Err(error) => return Sent::Refused(format!("invalid amount: {error}")),
        };
        let credentials = match self.credentials.token() {
            Ok(token) => token,
            Err(error) => return Sent::RetryLater(format!("no service token: {error:#}")),
        };
        let mut call = self
            .client
            .post(format!(
                "{}/api/v1/payments",
                self.config.url.trim_end_matches('/')
            ))
            .bearer_auth(credentials)
            .header(
                "Idempotency-Key",
                format!("order-{}-attempt-{}", request.order_id, request.attempt),
            )
            .json(&json!({
                "order_id": request.order_id,
                "amount": amount.to_string(),
                "currency": request.currency,
                "method": request.method,
                "token": token,
                "user_id": request.user_id,
            }));
        if let Some(traceparent) = &request.traceparent {
            call = call.header("traceparent", traceparent);
        }
        let response = match call.send().await {
            Ok(response) => response,
            Err(error) => return Sent::RetryLater(format!("payments unreachable: {error}")),
        };
        let status = response.status();
        if status.is_success() {
            return Sent::Accepted;
        }
        let problem: serde_json::Value = response.json().await.unwrap_or_default();
        let kind = problem["type"].as_str().unwrap_or_default().to_owned();
        match status.as_u16() {
            409 if kind == "payment_exists" => Sent::Accepted,
            400 | 422 => Sent::Refused(format!("payments refused the request: {kind}")),
            _ => Sent::RetryLater(format!("payments answered {status} {kind}")),
        }
    }
}
