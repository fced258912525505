//! The built-in simulated provider.

use std::{
    collections::{BTreeMap, HashMap},
    sync::Mutex,
    time::Duration,
};

use contracts::money::Money;
use futures_util::future::BoxFuture;
use platform::db::PgPool;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::{PaymentProvider, ProviderError, Resolution, durable};

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
/// charge took. [`SimulatedProvider::durable`] keeps what it did in the
/// database (table `payments.simulated_provider`, one row per payment, read
/// and written under a row lock), so it remembers its charges across
/// restarts and between instances, as a real provider does; the default is
/// in memory (tests).
pub struct SimulatedProvider {
    latency: Duration,
    store: Store,
}

enum Store {
    Memory(Mutex<HashMap<Uuid, Record>>),
    Database(PgPool),
}

impl Default for SimulatedProvider {
    fn default() -> Self {
        Self::new(Duration::ZERO)
    }
}

impl std::fmt::Debug for SimulatedProvider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SimulatedProvider")
            .field("latency", &self.latency)
            .field("durable", &matches!(self.store, Store::Database(_)))
            .finish()
    }
}

/// What the simulated provider knows of one payment.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(super) struct Record {
    /// The outcome of the charge or authorization (its reference, or why not).
    #[serde(default)]
    outcome: Option<Result<String, ProviderError>>,
    /// Voided: nothing can be charged or captured any more.
    #[serde(default)]
    voided: bool,
    /// An authorization held: amount (minor units) and token.
    #[serde(default)]
    hold: Option<(i64, String)>,
    /// Money taken (a charge or a capture): amount and reference.
    #[serde(default)]
    taken: Option<(i64, String)>,
    /// Refunds by refund id: amount and reference.
    #[serde(default)]
    refunds: BTreeMap<Uuid, (i64, String)>,
}

fn outcome(token: &str, payment_id: Uuid) -> Result<String, ProviderError> {
    match token {
        "tok_visa" | "tok_mastercard" | "tok_amex" | CAPTURE_DECLINED => {
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

impl Record {
    fn charge(&mut self, id: Uuid, token: &str, amount: Money) -> Result<String, ProviderError> {
        if self.voided {
            return Err(ProviderError::Declined("voided".into()));
        }
        if let Some(previous @ Ok(_)) = &self.outcome {
            return previous.clone();
        }
        let result = match outcome(token, id) {
            Ok(_) if token == CAPTURE_DECLINED => {
                Err(ProviderError::Declined("capture_declined".into()))
            }
            other => other,
        };
        if let Ok(reference) = &result {
            self.taken = Some((amount.minor(), reference.clone()));
        }
        self.outcome = Some(result.clone());
        result
    }

    fn authorize(&mut self, id: Uuid, token: &str, amount: Money) -> Result<String, ProviderError> {
        if self.voided {
            return Err(ProviderError::Declined("voided".into()));
        }
        if let Some(previous @ Ok(_)) = &self.outcome {
            return previous.clone();
        }
        let result = outcome(token, id).map(|_| format!("auth_{}", id.simple()));
        if result.is_ok() {
            self.hold = Some((amount.minor(), token.to_owned()));
        }
        self.outcome = Some(result.clone());
        result
    }

    fn capture(&mut self, id: Uuid, amount: Money) -> Result<String, ProviderError> {
        if let Some((_, reference)) = &self.taken {
            return Ok(reference.clone());
        }
        if self.voided {
            return Err(ProviderError::Declined("voided".into()));
        }
        let Some((held, token)) = &self.hold else {
            return Err(ProviderError::Declined("no_authorization".into()));
        };
        if amount.minor() > *held {
            return Err(ProviderError::Declined(
                "capture_exceeds_authorization".into(),
            ));
        }
        if token == CAPTURE_DECLINED {
            return Err(ProviderError::Declined("capture_declined".into()));
        }
        let reference = format!("ch_{}", id.simple());
        self.taken = Some((amount.minor(), reference.clone()));
        Ok(reference)
    }

    fn void(&mut self) -> Result<(), ProviderError> {
        if self.taken.is_some() {
            return Err(ProviderError::Declined("already_captured".into()));
        }
        self.voided = true;
        self.hold = None;
        Ok(())
    }

    fn resolve(&mut self) -> Resolution {
        match &self.outcome {
            Some(Ok(reference)) => Resolution::Charged(reference.clone()),
            Some(Err(ProviderError::Declined(reason))) => Resolution::Declined(reason.clone()),
            Some(Err(ProviderError::Transient(_))) | None => {
                self.voided = true;
                Resolution::Voided
            }
        }
    }

    /// A refund of a charge this provider made is never more than it took.
    /// (A charge it has no record of, made before it remembered charges, is
    /// taken at its word.)
    fn refund(&mut self, refund_id: Uuid, amount: Money) -> Result<String, ProviderError> {
        if let Some((_, reference)) = self.refunds.get(&refund_id) {
            return Ok(reference.clone());
        }
        if let Some((taken, _)) = &self.taken {
            let refunded: i64 = self.refunds.values().map(|(minor, _)| minor).sum();
            if refunded + amount.minor() > *taken {
                return Err(ProviderError::Declined("refund_exceeds_charge".into()));
            }
        } else if self.outcome.is_some() {
            return Err(ProviderError::Declined("nothing_taken".into()));
        }
        let reference = format!("re_{}", refund_id.simple());
        self.refunds
            .insert(refund_id, (amount.minor(), reference.clone()));
        Ok(reference)
    }
}

impl SimulatedProvider {
    /// In memory: forgets everything when the process stops (tests).
    pub fn new(latency: Duration) -> Self {
        Self {
            latency,
            store: Store::Memory(Mutex::default()),
        }
    }

    /// Remembers every charge, hold, capture and refund in the database.
    pub fn durable(latency: Duration, pool: PgPool) -> Self {
        Self {
            latency,
            store: Store::Database(pool),
        }
    }

    /// How many payments had money taken, and how many refunds were made
    /// (in memory; a durable provider reports nothing here).
    pub fn ledger(&self) -> (u64, usize) {
        match &self.store {
            Store::Memory(records) => {
                let records = records.lock().unwrap_or_else(|p| p.into_inner());
                (
                    records.values().filter(|r| r.taken.is_some()).count() as u64,
                    records.values().map(|r| r.refunds.len()).sum(),
                )
            }
            Store::Database(_) => (0, 0),
        }
    }

    async fn pause(&self) {
        if !self.latency.is_zero() {
            tokio::time::sleep(self.latency).await;
        }
    }

    /// Runs `change` on the payment's record, alone (a lock), and keeps it.
    async fn with_record<T: Send>(
        &self,
        payment_id: Uuid,
        change: impl Fn(&mut Record) -> T + Send + Sync,
    ) -> Result<T, ProviderError> {
        match &self.store {
            Store::Memory(records) => {
                let mut records = records.lock().unwrap_or_else(|p| p.into_inner());
                Ok(change(records.entry(payment_id).or_default()))
            }
            Store::Database(pool) => durable::with_record(pool, payment_id, change)
                .await
                .map_err(|error| {
                    tracing::warn!(error.message = %format!("{error:#}"), "the simulated provider's store failed");
                    ProviderError::Transient("provider_unavailable".into())
                }),
        }
    }
}

/// The simulated provider's rows in `payments.simulated_provider`.
impl PaymentProvider for SimulatedProvider {
    fn charge<'a>(
        &'a self,
        payment_id: Uuid,
        token: &'a str,
        amount: Money,
    ) -> BoxFuture<'a, Result<String, ProviderError>> {
        Box::pin(async move {
            self.pause().await;
            self.with_record(payment_id, |r| r.charge(payment_id, token, amount))
                .await?
        })
    }

    fn authorize<'a>(
        &'a self,
        payment_id: Uuid,
        token: &'a str,
        amount: Money,
    ) -> BoxFuture<'a, Result<String, ProviderError>> {
        Box::pin(async move {
            self.pause().await;
            self.with_record(payment_id, |r| r.authorize(payment_id, token, amount))
                .await?
        })
    }

    fn capture(
        &self,
        payment_id: Uuid,
        amount: Money,
    ) -> BoxFuture<'_, Result<String, ProviderError>> {
        Box::pin(async move {
            self.pause().await;
            self.with_record(payment_id, |r| r.capture(payment_id, amount))
                .await?
        })
    }

    fn void(&self, payment_id: Uuid) -> BoxFuture<'_, Result<(), ProviderError>> {
        Box::pin(async move { self.with_record(payment_id, Record::void).await? })
    }

    fn resolve(&self, payment_id: Uuid) -> BoxFuture<'_, Result<Resolution, ProviderError>> {
        Box::pin(async move { self.with_record(payment_id, Record::resolve).await })
    }

    fn refund<'a>(
        &'a self,
        refund_id: Uuid,
        payment_id: Uuid,
        _charge_reference: &'a str,
        amount: Money,
    ) -> BoxFuture<'a, Result<String, ProviderError>> {
        Box::pin(async move {
            self.pause().await;
            self.with_record(payment_id, |r| r.refund(refund_id, amount))
                .await?
        })
    }
}
