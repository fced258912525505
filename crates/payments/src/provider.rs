//! The payment provider: a trait the service charges through, and the built-in
//! simulated provider whose test tokens are named after the well-known card
//! test tokens.
//!
//! Providers are idempotent per payment id (as real ones are per idempotency
//! key): charging or refunding the same payment again returns the first
//! result and never moves money twice. The service relies on that to retry
//! safely after a crash.

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
struct Record {
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
mod durable {
    use diesel::sql_types::{Jsonb, Uuid as SqlUuid};
    use diesel::{OptionalExtension, QueryableByName, sql_query};
    use diesel_async::{AsyncConnection, RunQueryDsl};
    use platform::db::PgPool;
    use uuid::Uuid;

    use super::Record;

    #[derive(QueryableByName)]
    struct Row {
        #[diesel(sql_type = Jsonb)]
        record: serde_json::Value,
    }

    /// Runs `change` on the payment's row under a row lock and keeps the
    /// result. A payment seen for the first time costs one statement: the
    /// change applied to an empty record is inserted as it stands (when
    /// another process inserted first, the locked path runs instead).
    pub(super) async fn with_record<T: Send>(
        pool: &PgPool,
        payment_id: Uuid,
        change: impl Fn(&mut Record) -> T + Send + Sync,
    ) -> anyhow::Result<T> {
        let mut conn = platform::db::connection(pool).await?;
        let mut fresh = Record::default();
        let result = change(&mut fresh);
        if fresh == Record::default() {
            // Nothing to keep for a new payment; an existing one decides.
            let found: Option<Row> =
                sql_query("SELECT record FROM payments.simulated_provider WHERE payment_id = $1")
                    .bind::<SqlUuid, _>(payment_id)
                    .get_result(&mut conn)
                    .await
                    .optional()?;
            if found.is_none() {
                return Ok(result);
            }
        } else {
            let inserted = sql_query(
                "INSERT INTO payments.simulated_provider (payment_id, record) VALUES ($1, $2) \
                 ON CONFLICT (payment_id) DO NOTHING",
            )
            .bind::<SqlUuid, _>(payment_id)
            .bind::<Jsonb, _>(serde_json::to_value(&fresh)?)
            .execute(&mut conn)
            .await?;
            if inserted == 1 {
                return Ok(result);
            }
        }
        conn.transaction(async move |conn| {
            let row: Row = sql_query(
                "SELECT record FROM payments.simulated_provider WHERE payment_id = $1 FOR UPDATE",
            )
            .bind::<SqlUuid, _>(payment_id)
            .get_result(conn)
            .await?;
            let mut record: Record = serde_json::from_value(row.record)?;
            let before = record.clone();
            let result = change(&mut record);
            if record != before {
                sql_query(
                    "UPDATE payments.simulated_provider SET record = $2 WHERE payment_id = $1",
                )
                .bind::<SqlUuid, _>(payment_id)
                .bind::<Jsonb, _>(serde_json::to_value(&record)?)
                .execute(conn)
                .await?;
            }
            Ok::<_, anyhow::Error>(result)
        })
        .await
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
