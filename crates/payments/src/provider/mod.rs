//! The payment provider: a trait the service charges through, and the built-in
//! simulated provider whose test tokens are named after the well-known card
//! test tokens.
//!
//! Providers are idempotent per payment id (as real ones are per idempotency
//! key): charging or refunding the same payment again returns the first
//! result and never moves money twice. The service relies on that to retry
//! safely after a crash.

use contracts::money::Money;
use futures_util::future::BoxFuture;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// Why a provider did not charge.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
pub enum ProviderError {
    /// Final: the card was refused (`card_declined`, `insufficient_funds`,
    /// `invalid_token`).
    #[error("declined: {0}")]
    Declined(String),
    /// Worth retrying: the provider had a problem.
    #[error("transient provider failure: {0}")]
    Transient(String),
}

pub trait PaymentProvider: Send + Sync + 'static {
    /// Charges `amount` to `token`; returns the provider's charge reference.
    fn charge<'a>(
        &'a self,
        payment_id: Uuid,
        token: &'a str,
        amount: Money,
    ) -> BoxFuture<'a, Result<String, ProviderError>>;

    /// Refunds `amount` of a charge, once per `refund_id` (asking again
    /// returns the first refund's reference); returns the refund reference.
    /// A provider refuses ([`ProviderError::Declined`]) to give back more than
    /// it took.
    fn refund<'a>(
        &'a self,
        refund_id: Uuid,
        payment_id: Uuid,
        charge_reference: &'a str,
        amount: Money,
    ) -> BoxFuture<'a, Result<String, ProviderError>>;

    /// Manual capture: holds `amount` on `token` without taking it; returns
    /// the authorization's reference. Idempotent per payment id.
    fn authorize<'a>(
        &'a self,
        payment_id: Uuid,
        token: &'a str,
        amount: Money,
    ) -> BoxFuture<'a, Result<String, ProviderError>>;

    /// Takes `amount` (at most what is held) of an authorization, once per
    /// payment (asking again returns the first capture's reference); the
    /// rest of the hold is released.
    fn capture(
        &self,
        payment_id: Uuid,
        amount: Money,
    ) -> BoxFuture<'_, Result<String, ProviderError>>;

    /// Releases an authorization nothing was captured of, so that it can
    /// never be captured. Idempotent.
    fn void(&self, payment_id: Uuid) -> BoxFuture<'_, Result<(), ProviderError>>;

    /// What became of the charge of `payment_id` (reconciliation after a
    /// crash): charged, declined, or never made, in which case the provider
    /// voids the id so that a charge still in flight can no longer succeed
    /// (as cancelling a payment intent does).
    fn resolve(&self, payment_id: Uuid) -> BoxFuture<'_, Result<Resolution, ProviderError>>;
}

/// What a provider knows of a charge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Resolution {
    /// Money was taken: the charge reference.
    Charged(String),
    /// The charge was refused for good.
    Declined(String),
    /// No charge was made; none will be.
    Voided,
}

mod durable;
mod simulated;
#[cfg(test)]
mod tests;

pub use simulated::{CAPTURE_DECLINED, SimulatedProvider};
