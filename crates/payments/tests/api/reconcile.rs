//! Charges interrupted by a crash: reconciled with what the provider says happened.

use crate::helpers::*;

/// A provider whose charges never come back to the service: as if the
/// process died after asking (`charged_first`: the provider did charge).
struct Interrupted {
    inner: Arc<SimulatedProvider>,
    charged_first: bool,
    /// Lets a held charge through (only when not `charged_first`).
    resume: Arc<tokio::sync::Notify>,
    /// The provider cannot be asked what happened.
    unreachable: bool,
}

impl PaymentProvider for Interrupted {
    fn charge<'a>(
        &'a self,
        payment_id: Uuid,
        token: &'a str,
        amount: contracts::money::Money,
    ) -> futures_util::future::BoxFuture<'a, Result<String, ProviderError>> {
        Box::pin(async move {
            if self.charged_first {
                let _ = self.inner.charge(payment_id, token, amount).await;
                std::future::pending::<()>().await;
            }
            self.resume.notified().await;
            self.inner.charge(payment_id, token, amount).await
        })
    }

    fn authorize<'a>(
        &'a self,
        payment_id: Uuid,
        token: &'a str,
        amount: contracts::money::Money,
    ) -> futures_util::future::BoxFuture<'a, Result<String, ProviderError>> {
        Box::pin(async move {
            if self.charged_first {
                let _ = self.inner.authorize(payment_id, token, amount).await;
                std::future::pending::<()>().await;
            }
            self.resume.notified().await;
            self.inner.authorize(payment_id, token, amount).await
        })
    }

    fn capture(
        &self,
        payment_id: Uuid,
        amount: contracts::money::Money,
    ) -> futures_util::future::BoxFuture<'_, Result<String, ProviderError>> {
        self.inner.capture(payment_id, amount)
    }

    fn void(
        &self,
        payment_id: Uuid,
    ) -> futures_util::future::BoxFuture<'_, Result<(), ProviderError>> {
        self.inner.void(payment_id)
    }

    fn refund<'a>(
        &'a self,
        refund_id: Uuid,
        payment_id: Uuid,
        charge_reference: &'a str,
        amount: contracts::money::Money,
    ) -> futures_util::future::BoxFuture<'a, Result<String, ProviderError>> {
        self.inner
            .refund(refund_id, payment_id, charge_reference, amount)
    }

    fn resolve(
        &self,
        payment_id: Uuid,
    ) -> futures_util::future::BoxFuture<'_, Result<Resolution, ProviderError>> {
        if self.unreachable {
            return Box::pin(async { Err(ProviderError::Transient("unreachable".into())) });
        }
        self.inner.resolve(payment_id)
    }
}

fn interrupted(charged_first: bool, resume: Arc<tokio::sync::Notify>) -> Option<WrapProvider> {
    wrap(charged_first, resume, false)
}

fn wrap(
    charged_first: bool,
    resume: Arc<tokio::sync::Notify>,
    unreachable: bool,
) -> Option<WrapProvider> {
    Some(Box::new(move |inner| {
        Arc::new(Interrupted {
            inner,
            charged_first,
            resume,
            unreachable,
        }) as Arc<dyn PaymentProvider>
    }))
}

/// A payment left `processing` that reconciliation cannot settle (the
/// provider cannot be asked) is counted in `payments_stuck_processing`, the
/// gauge the PaymentsStuckProcessing alert watches; it stays unsettled, never
/// guessed.
#[tokio::test]
async fn a_payment_reconciliation_cannot_settle_is_counted_as_stuck() {
    let app = spawn_app_with(|_| {}, wrap(true, Arc::default(), true)).await;
    let order = app.pending_order("alice").await;
    let hung = app
        .client
        .post(format!("{}/api/v1/payments", app.address))
        .bearer_auth(token("alice"))
        .timeout(Duration::from_millis(500))
        .json(&body(order, "tok_visa"))
        .send()
        .await;
    assert!(hung.is_err(), "the charge never answers");
    let mut gauge = String::new();
    for _ in 0..100 {
        let metrics = app.get("", "/metrics").await.text().await.unwrap();
        gauge = metrics
            .lines()
            .find(|line| line.starts_with("payments_stuck_processing "))
            .unwrap_or_default()
            .to_owned();
        if gauge == "payments_stuck_processing 1" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(gauge, "payments_stuck_processing 1");
    let id = app.first_payment_of(order).await;
    let payment: Value = app
        .get(&token("alice"), &format!("/api/v1/payments/{id}"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(payment["status"], "processing");
}

#[tokio::test]
async fn a_charge_interrupted_after_the_provider_took_the_money_is_reconciled_once() {
    let app = spawn_app_with(|_| {}, interrupted(true, Arc::default())).await;
    let order = app.pending_order("alice").await;
    let request = body(order, "tok_visa");
    // The request never comes back: the service "died" mid-charge.
    let hung = app
        .client
        .post(format!("{}/api/v1/payments", app.address))
        .bearer_auth(token("alice"))
        .header("Idempotency-Key", "crash-1")
        .timeout(Duration::from_millis(500))
        .json(&request)
        .send()
        .await;
    assert!(hung.is_err(), "the charge never answers");
    let id = app.first_payment_of(order).await;

    // Reconciliation asks the provider, which did charge: succeeded, once.
    let settled = app.eventually(&id, |p| p["status"] != "processing").await;
    assert_eq!(settled["status"], "succeeded");
    assert!(
        settled["provider_reference"]
            .as_str()
            .unwrap()
            .starts_with("ch_")
    );
    assert_eq!(app.provider.ledger(), (1, 0));
    assert_eq!(app.event_types().await, ["payment.successful"]);
}

#[tokio::test]
async fn a_charge_never_made_is_voided_and_a_late_answer_cannot_overwrite_it() {
    let resume = Arc::new(tokio::sync::Notify::new());
    let app = spawn_app_with(|_| {}, interrupted(false, resume.clone())).await;
    let order = app.pending_order("alice").await;
    let pay = {
        let client = app.client.clone();
        let url = format!("{}/api/v1/payments", app.address);
        let request = body(order, "tok_visa");
        tokio::spawn(async move {
            client
                .post(url)
                .bearer_auth(token("alice"))
                .json(&request)
                .send()
                .await
                .unwrap()
        })
    };
    let id = app.first_payment_of(order).await;
    // Reconciled while the charge is held: the provider never charged, so
    // it voids the payment and the payment fails.
    let settled = app.eventually(&id, |p| p["status"] != "processing").await;
    assert_eq!(settled["status"], "failed");
    assert_eq!(settled["failure_reason"], "abandoned");

    // The held charge finally reaches the provider: refused, and the
    // service's late settle does not overwrite the recorded outcome.
    resume.notify_one();
    let answer: Value = pay.await.unwrap().json().await.unwrap();
    assert_eq!(answer["status"], "failed");
    assert_eq!(app.provider.ledger(), (0, 0));
    assert_eq!(app.event_types().await, ["payment.failed"]);
}

#[tokio::test]
async fn an_authorization_interrupted_after_the_provider_held_the_money_is_reconciled_as_authorized()
 {
    let app = spawn_app_with(|_| {}, interrupted(true, Arc::default())).await;
    let order = app.pending_order("alice").await;
    let mut request = body(order, "tok_visa");
    request["capture_method"] = json!("manual");
    let hung = app
        .client
        .post(format!("{}/api/v1/payments", app.address))
        .bearer_auth(token("alice"))
        .timeout(Duration::from_millis(500))
        .json(&request)
        .send()
        .await;
    assert!(hung.is_err(), "the authorization never answers");
    let id = app.first_payment_of(order).await;
    // The provider holds the money but took none: authorized, not succeeded.
    let settled = app.eventually(&id, |p| p["status"] != "processing").await;
    assert_eq!(settled["status"], "authorized");
    assert_eq!(settled["captured_amount"], "0.00");
    assert_eq!(app.provider.ledger(), (0, 0));
    assert_eq!(app.event_types().await, ["payment.authorized"]);
}

#[tokio::test]
async fn the_simulated_provider_remembers_across_a_restart_and_between_instances() {
    let db = TestDatabase::create("payments", "payments", payments::MIGRATIONS)
        .await
        .unwrap();
    let provider = || {
        let mut database = payments::config::Settings::defaults().unwrap().database;
        database.url = SecretString::from(db.url.clone());
        database.pool_size = 2;
        SimulatedProvider::durable(Duration::ZERO, platform::db::build_pool(&database).unwrap())
    };
    let usd = contracts::money::Currency::parse("USD").unwrap();
    let cents = |minor| contracts::money::Money::from_minor(minor, usd).unwrap();
    let (charged, held) = (Uuid::now_v7(), Uuid::now_v7());
    {
        let first = provider();
        first
            .charge(charged, "tok_visa", cents(1_000))
            .await
            .unwrap();
        first.authorize(held, "tok_visa", cents(500)).await.unwrap();
        first
            .refund(Uuid::now_v7(), charged, "", cents(600))
            .await
            .unwrap();
    }
    // Another process (a restart, or a second instance) knows it all.
    let second = provider();
    assert!(matches!(
        second.resolve(charged).await,
        Ok(Resolution::Charged(_))
    ));
    assert_eq!(
        second.refund(Uuid::now_v7(), charged, "", cents(401)).await,
        Err(ProviderError::Declined("refund_exceeds_charge".into()))
    );
    assert_eq!(
        second.capture(held, cents(501)).await,
        Err(ProviderError::Declined(
            "capture_exceeds_authorization".into()
        ))
    );
    let captured = second.capture(held, cents(500)).await.unwrap();
    assert_eq!(
        provider().capture(held, cents(500)).await.unwrap(),
        captured
    );
    assert_eq!(
        provider().void(held).await,
        Err(ProviderError::Declined("already_captured".into()))
    );
    // A charge never made is voided for good, for everyone.
    let never = Uuid::now_v7();
    assert_eq!(second.resolve(never).await, Ok(Resolution::Voided));
    assert_eq!(
        provider().charge(never, "tok_visa", cents(100)).await,
        Err(ProviderError::Declined("voided".into()))
    );
}
