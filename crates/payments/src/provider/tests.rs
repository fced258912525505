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
