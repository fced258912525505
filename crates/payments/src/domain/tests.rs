use super::*;
use contracts::money::Currency;

fn usd(amount: &str) -> Money {
    Money::parse(amount, Currency::parse("USD").unwrap()).unwrap()
}

fn order(status: OrderStatus) -> OrderFacts {
    OrderFacts {
        id: Uuid::now_v7(),
        user_id: "alice".into(),
        status,
        total: usd("59.98"),
    }
}

fn request<'a>(caller: &'a str, admin: bool, payer: &'a str, amount: &str) -> ChargeRequest<'a> {
    ChargeRequest {
        caller,
        admin,
        payer,
        amount: usd(amount),
    }
}

#[test]
fn only_the_owner_or_an_admin_pays_a_pending_order_its_exact_total() {
    let pending = order(OrderStatus::Pending);
    let alice = request("alice", false, "alice", "59.98");
    assert_eq!(check_payable(Some(&pending), alice), Ok(()));
    assert_eq!(
        check_payable(
            Some(&pending),
            request("svc-orders", true, "alice", "59.98")
        ),
        Ok(())
    );
    // Another user, or an admin naming the wrong payer: as if absent.
    for stranger in [
        request("bob", false, "bob", "59.98"),
        request("bob", false, "alice", "59.98"),
        request("ops", true, "bob", "59.98"),
    ] {
        assert_eq!(
            check_payable(Some(&pending), stranger),
            Err(Refusal::OrderNotFound)
        );
    }
    assert_eq!(check_payable(None, alice), Err(Refusal::OrderNotFound));
    for status in [
        OrderStatus::Paid,
        OrderStatus::Cancelled,
        OrderStatus::Shipped,
    ] {
        assert_eq!(
            check_payable(Some(&order(status)), alice),
            Err(Refusal::NotPayable(status))
        );
    }
    assert_eq!(
        check_payable(Some(&pending), request("alice", false, "alice", "0.01")),
        Err(Refusal::AmountMismatch {
            expected: usd("59.98")
        })
    );
    let euros = ChargeRequest {
        amount: Money::parse("59.98", Currency::parse("EUR").unwrap()).unwrap(),
        ..alice
    };
    assert_eq!(
        check_payable(Some(&pending), euros),
        Err(Refusal::AmountMismatch {
            expected: usd("59.98")
        })
    );
}

#[test]
fn a_payment_moves_only_forward() {
    let usd = Currency::parse("USD").unwrap();
    let now = time::OffsetDateTime::now_utc();
    let payment = Payment::start(
        Uuid::now_v7(),
        Uuid::now_v7(),
        "usr".into(),
        Money::parse("1.00", usd).unwrap(),
        "card".into(),
        CaptureMethod::Automatic,
        now,
    );
    let failed = payment.clone().failed("card_declined".into(), now).unwrap();
    assert!(failed.clone().succeeded("x".into(), now).is_err());
    assert!(matches!(
        failed.refund_amount(None),
        Err(RefundRefusal::NotRefundable(PaymentStatus::Failed))
    ));
    let succeeded = payment.succeeded("ch_1".into(), now).unwrap();
    let cents = |minor| Money::from_minor(minor, usd).unwrap();
    assert_eq!(succeeded.refund_amount(Some(cents(40))), Ok(cents(40)));
    let mut reserved = succeeded.clone();
    reserved.refund_pending = cents(40);
    let partly = reserved.refund_done(cents(40), "re_1".into(), now).unwrap();
    assert_eq!(partly.status, PaymentStatus::PartiallyRefunded);
    assert_eq!(
        partly.refund_amount(Some(cents(61))),
        Err(RefundRefusal::ExceedsCaptured {
            refundable: cents(60)
        })
    );
    assert_eq!(partly.refund_amount(None), Ok(cents(60)));
    let mut rest = partly.clone();
    rest.refund_pending = cents(60);
    let refunded = rest.refund_done(cents(60), "re_2".into(), now).unwrap();
    assert_eq!(refunded.status, PaymentStatus::Refunded);
    assert_eq!(
        refunded.refund_amount(None),
        Err(RefundRefusal::ExceedsCaptured {
            refundable: cents(0)
        })
    );
    assert!(refunded.succeeded("x".into(), now).is_err());
}

#[test]
fn an_authorization_is_captured_once_up_to_its_amount_or_voided() {
    let usd = Currency::parse("USD").unwrap();
    let cents = |minor| Money::from_minor(minor, usd).unwrap();
    let now = time::OffsetDateTime::now_utc();
    let authorized = Payment::start(
        Uuid::now_v7(),
        Uuid::now_v7(),
        "usr".into(),
        cents(100),
        "card".into(),
        CaptureMethod::Manual,
        now,
    )
    .authorized("auth_1".into(), now)
    .unwrap();
    assert!(matches!(
        authorized.refund_amount(None),
        Err(RefundRefusal::NotRefundable(PaymentStatus::Authorized))
    ));
    assert_eq!(
        authorized.capture_amount(Some(cents(101))),
        Err(CaptureRefusal::ExceedsAuthorized {
            authorized: cents(100)
        })
    );
    assert_eq!(authorized.capture_amount(None), Ok(cents(100)));
    let captured = authorized.clone().captured(cents(60), now).unwrap();
    assert_eq!(captured.status, PaymentStatus::Succeeded);
    assert_eq!(captured.refund_amount(None), Ok(cents(60)));
    assert_eq!(
        captured.capture_amount(None),
        Err(CaptureRefusal::NotCapturable(PaymentStatus::Succeeded))
    );
    assert!(captured.voided(now).is_err());
    let voided = authorized.voided(now).unwrap();
    assert_eq!(
        voided.capture_amount(None),
        Err(CaptureRefusal::NotCapturable(PaymentStatus::Voided))
    );
}
