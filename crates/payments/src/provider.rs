//! The payment provider: a trait the service charges through, and the built-in
//! simulated provider whose test tokens are named after the well-known card
//! test tokens.
//!
//! Providers are idempotent per payment id (as real ones are per idempotency
//! key): charging or refunding the same payment again returns the first
//! result and never moves money twice. The service relies on that to retry
//! safely after a crash.

use std::{
    collections::{HashMap, HashSet},
    sync::Mutex,
    time::Duration,
};

use contracts::money::Money;
use futures_util::future::BoxFuture;
use uuid::Uuid;

/// Why a provider did not charge.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
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

/// The test token whose authorization succeeds and whose capture is declined.
pub const CAPTURE_DECLINED: &str = "tok_captureDeclined";

/// The simulated provider.
///
/// | token | outcome |
/// |---|---|
/// | `tok_visa`, `tok_mastercard`, `tok_amex` | succeeds |
/// | `tok_chargeDeclined` | declined: `card_declined` |
/// | `tok_chargeDeclinedInsufficientFunds` | declined: `insufficient_funds` |
/// | `tok_processingError` | fails transiently, every time |
/// | `tok_captureDeclined` | authorizes, but its capture is declined: `capture_declined` (a charge with it is declined so) |
/// | anything else | declined: `invalid_token` |
///
/// It never captures more than an authorization holds, never captures a
/// voided one, never voids a captured one and never refunds more than a
/// charge took.
#[derive(Debug, Default)]
pub struct SimulatedProvider {
    latency: Duration,
    charges: Mutex<Charges>,
    /// Refunds by refund id: the payment, the amount (minor units) and the
    /// reference.
    refunds: Mutex<HashMap<Uuid, (Uuid, i64, String)>>,
}

/// The simulated provider's memory of charges, per payment id.
#[derive(Debug, Default)]
struct Charges {
    outcomes: HashMap<Uuid, Result<String, ProviderError>>,
    voided: HashSet<Uuid>,
    /// What each successful charge or capture took (minor units).
    amounts: HashMap<Uuid, i64>,
    /// Authorizations held (manual capture): amount (minor units) and token.
    holds: HashMap<Uuid, (i64, String)>,
    /// Captures made, by payment: their reference.
    captures: HashMap<Uuid, String>,
    /// Charges that actually moved money (for tests: never twice).
    succeeded: u64,
}

impl SimulatedProvider {
    pub fn new(latency: Duration) -> Self {
        Self {
            latency,
            ..Self::default()
        }
    }

    /// How many charges moved money, and how many refunds were made.
    pub fn ledger(&self) -> (u64, usize) {
        let charges = self.charges.lock().unwrap_or_else(|p| p.into_inner());
        let refunds = self.refunds.lock().unwrap_or_else(|p| p.into_inner());
        (charges.succeeded, refunds.len())
    }

    fn outcome(token: &str, payment_id: Uuid) -> Result<String, ProviderError> {
        match token {
            "tok_visa" | "tok_mastercard" | "tok_amex" | "tok_captureDeclined" => {
                Ok(format!("ch_{}", payment_id.simple()))
            }
            "tok_chargeDeclined" => Err(ProviderError::Declined("card_declined".into())),
            "tok_chargeDeclinedInsufficientFunds" => {
                Err(ProviderError::Declined("insufficient_funds".into()))
            }
            "tok_processingError" => Err(ProviderError::Transient("processing_error".into())),
            _ => Err(ProviderError::Declined("invalid_token".into())),
        }
    }
}

impl PaymentProvider for SimulatedProvider {
    fn charge<'a>(
        &'a self,
        payment_id: Uuid,
        token: &'a str,
        amount: Money,
    ) -> BoxFuture<'a, Result<String, ProviderError>> {
        Box::pin(async move {
            if !self.latency.is_zero() {
                tokio::time::sleep(self.latency).await;
            }
            let mut charges = self.charges.lock().unwrap_or_else(|p| p.into_inner());
            if charges.voided.contains(&payment_id) {
                return Err(ProviderError::Declined("voided".into()));
            }
            if let Some(previous @ Ok(_)) = charges.outcomes.get(&payment_id) {
                return previous.clone();
            }
            let outcome = match Self::outcome(token, payment_id) {
                Ok(_) if token == CAPTURE_DECLINED => {
                    Err(ProviderError::Declined("capture_declined".into()))
                }
                other => other,
            };
            if outcome.is_ok() {
                charges.succeeded += 1;
                charges.amounts.insert(payment_id, amount.minor());
            }
            charges.outcomes.insert(payment_id, outcome.clone());
            outcome
        })
    }

    fn authorize<'a>(
        &'a self,
        payment_id: Uuid,
        token: &'a str,
        amount: Money,
    ) -> BoxFuture<'a, Result<String, ProviderError>> {
        Box::pin(async move {
            if !self.latency.is_zero() {
                tokio::time::sleep(self.latency).await;
            }
            let mut charges = self.charges.lock().unwrap_or_else(|p| p.into_inner());
            if charges.voided.contains(&payment_id) {
                return Err(ProviderError::Declined("voided".into()));
            }
            if let Some(previous @ Ok(_)) = charges.outcomes.get(&payment_id) {
                return previous.clone();
            }
            let outcome =
                Self::outcome(token, payment_id).map(|_| format!("auth_{}", payment_id.simple()));
            if outcome.is_ok() {
                charges
                    .holds
                    .insert(payment_id, (amount.minor(), token.to_owned()));
            }
            charges.outcomes.insert(payment_id, outcome.clone());
            outcome
        })
    }

    fn capture(
        &self,
        payment_id: Uuid,
        amount: Money,
    ) -> BoxFuture<'_, Result<String, ProviderError>> {
        Box::pin(async move {
            if !self.latency.is_zero() {
                tokio::time::sleep(self.latency).await;
            }
            let mut charges = self.charges.lock().unwrap_or_else(|p| p.into_inner());
            if let Some(reference) = charges.captures.get(&payment_id) {
                return Ok(reference.clone());
            }
            if charges.voided.contains(&payment_id) {
                return Err(ProviderError::Declined("voided".into()));
            }
            let Some((held, token)) = charges.holds.get(&payment_id).cloned() else {
                return Err(ProviderError::Declined("no_authorization".into()));
            };
            if amount.minor() > held {
                return Err(ProviderError::Declined(
                    "capture_exceeds_authorization".into(),
                ));
            }
            if token == CAPTURE_DECLINED {
                return Err(ProviderError::Declined("capture_declined".into()));
            }
            let reference = format!("ch_{}", payment_id.simple());
            charges.succeeded += 1;
            charges.amounts.insert(payment_id, amount.minor());
            charges.captures.insert(payment_id, reference.clone());
            Ok(reference)
        })
    }

    fn void(&self, payment_id: Uuid) -> BoxFuture<'_, Result<(), ProviderError>> {
        Box::pin(async move {
            let mut charges = self.charges.lock().unwrap_or_else(|p| p.into_inner());
            if charges.captures.contains_key(&payment_id) {
                return Err(ProviderError::Declined("already_captured".into()));
            }
            charges.voided.insert(payment_id);
            charges.holds.remove(&payment_id);
            Ok(())
        })
    }

    fn resolve(&self, payment_id: Uuid) -> BoxFuture<'_, Result<Resolution, ProviderError>> {
        Box::pin(async move {
            let mut charges = self.charges.lock().unwrap_or_else(|p| p.into_inner());
            Ok(match charges.outcomes.get(&payment_id) {
                Some(Ok(reference)) => Resolution::Charged(reference.clone()),
                Some(Err(ProviderError::Declined(reason))) => Resolution::Declined(reason.clone()),
                Some(Err(ProviderError::Transient(_))) | None => {
                    charges.voided.insert(payment_id);
                    Resolution::Voided
                }
            })
        })
    }

    fn refund<'a>(
        &'a self,
        refund_id: Uuid,
        payment_id: Uuid,
        _charge_reference: &'a str,
        amount: Money,
    ) -> BoxFuture<'a, Result<String, ProviderError>> {
        Box::pin(async move {
            if !self.latency.is_zero() {
                tokio::time::sleep(self.latency).await;
            }
            let charged = self
                .charges
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .amounts
                .get(&payment_id)
                .copied();
            let mut refunds = self.refunds.lock().unwrap_or_else(|p| p.into_inner());
            if let Some((_, _, reference)) = refunds.get(&refund_id) {
                return Ok(reference.clone());
            }
            // A charge this process made is never refunded beyond what it
            // took. (One it does not know, made before a restart, is taken
            // at its word.)
            if let Some(charged) = charged {
                let refunded: i64 = refunds
                    .values()
                    .filter(|(payment, _, _)| *payment == payment_id)
                    .map(|(_, minor, _)| minor)
                    .sum();
                if refunded + amount.minor() > charged {
                    return Err(ProviderError::Declined("refund_exceeds_charge".into()));
                }
            }
            let reference = format!("re_{}", refund_id.simple());
            refunds.insert(refund_id, (payment_id, amount.minor(), reference.clone()));
            Ok(reference)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use contracts::money::Currency;

    fn one_dollar() -> Money {
        Money::parse("1.00", Currency::parse("USD").unwrap()).unwrap()
    }

    #[tokio::test]
    async fn test_tokens_behave_as_documented() {
        let provider = SimulatedProvider::default();
        let charge = |token: &'static str| provider.charge(Uuid::now_v7(), token, one_dollar());
        assert!(charge("tok_visa").await.unwrap().starts_with("ch_"));
        assert_eq!(
            charge("tok_chargeDeclined").await,
            Err(ProviderError::Declined("card_declined".into()))
        );
        assert_eq!(
            charge("tok_chargeDeclinedInsufficientFunds").await,
            Err(ProviderError::Declined("insufficient_funds".into()))
        );
        assert!(matches!(
            charge("tok_processingError").await,
            Err(ProviderError::Transient(_))
        ));
        assert_eq!(
            charge("tok_unknown").await,
            Err(ProviderError::Declined("invalid_token".into()))
        );
    }

    #[tokio::test]
    async fn charging_the_same_payment_twice_returns_the_first_charge() {
        let provider = SimulatedProvider::default();
        let id = Uuid::now_v7();
        let first = provider.charge(id, "tok_visa", one_dollar()).await.unwrap();
        let second = provider.charge(id, "tok_visa", one_dollar()).await.unwrap();
        assert_eq!(first, second);
        let refund_id = Uuid::now_v7();
        let refund = provider
            .refund(refund_id, id, &first, one_dollar())
            .await
            .unwrap();
        assert_eq!(
            provider
                .refund(refund_id, id, &first, one_dollar())
                .await
                .unwrap(),
            refund
        );
        // Never more than was taken.
        assert_eq!(
            provider
                .refund(Uuid::now_v7(), id, &first, one_dollar())
                .await,
            Err(ProviderError::Declined("refund_exceeds_charge".into()))
        );
        assert_eq!(provider.ledger(), (1, 1));
    }

    #[tokio::test]
    async fn an_authorization_is_captured_once_within_its_hold_or_voided() {
        let provider = SimulatedProvider::default();
        let cents = |minor| Money::from_minor(minor, Currency::parse("USD").unwrap()).unwrap();
        let id = Uuid::now_v7();
        provider
            .authorize(id, "tok_visa", cents(100))
            .await
            .unwrap();
        assert_eq!(provider.ledger(), (0, 0), "an authorization takes nothing");
        assert_eq!(
            provider.capture(id, cents(101)).await,
            Err(ProviderError::Declined(
                "capture_exceeds_authorization".into()
            ))
        );
        let first = provider.capture(id, cents(60)).await.unwrap();
        assert_eq!(provider.capture(id, cents(60)).await.unwrap(), first);
        assert_eq!(
            provider.void(id).await,
            Err(ProviderError::Declined("already_captured".into()))
        );
        assert_eq!(provider.ledger(), (1, 0));

        let held = Uuid::now_v7();
        provider
            .authorize(held, "tok_visa", cents(100))
            .await
            .unwrap();
        provider.void(held).await.unwrap();
        assert_eq!(
            provider.capture(held, cents(100)).await,
            Err(ProviderError::Declined("voided".into()))
        );

        let declined = Uuid::now_v7();
        provider
            .authorize(declined, CAPTURE_DECLINED, cents(100))
            .await
            .unwrap();
        assert_eq!(
            provider.capture(declined, cents(100)).await,
            Err(ProviderError::Declined("capture_declined".into()))
        );
        assert_eq!(provider.ledger(), (1, 0));
    }

    #[tokio::test]
    async fn resolving_reports_a_charge_or_voids_the_id() {
        let provider = SimulatedProvider::default();
        let charged = Uuid::now_v7();
        let reference = provider
            .charge(charged, "tok_visa", one_dollar())
            .await
            .unwrap();
        assert_eq!(
            provider.resolve(charged).await,
            Ok(Resolution::Charged(reference))
        );
        let never = Uuid::now_v7();
        assert_eq!(provider.resolve(never).await, Ok(Resolution::Voided));
        assert_eq!(
            provider.charge(never, "tok_visa", one_dollar()).await,
            Err(ProviderError::Declined("voided".into()))
        );
        assert_eq!(provider.ledger(), (1, 0));
    }
}
