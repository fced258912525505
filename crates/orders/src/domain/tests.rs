//! Aggregate tests: given a history, when a command arrives, then these events
//! (or this rule violation). No database, no clock.

use proptest::prelude::*;
use time::{OffsetDateTime, macros::datetime};
use uuid::Uuid;

use super::events::{OrderCancelled, OrderPaid, OrderPaymentFailed, OrderRefunded, OrderShipped};
use super::*;

const T0: OffsetDateTime = datetime!(2026-11-22 10:00 UTC);

fn usd() -> Currency {
    Currency::parse("USD").unwrap()
}

fn address() -> Address {
    Address::parse(&AddressInput {
        first_name: "Ada",
        last_name: "Lovelace",
        line1: "12 St James's Square",
        city: "London",
        postal_code: "SW1Y 4JH",
        country: "GB",
        ..AddressInput::default()
    })
    .unwrap()
}

fn item(price: &str, quantity: i64, currency: Currency) -> LineItem {
    LineItem {
        id: Uuid::now_v7(),
        product_id: ProductId::parse("prod_123").unwrap(),
        variant_id: None,
        name: Some("T-shirt".into()),
        sku: None,
        quantity: Quantity::parse(quantity).unwrap(),
        unit_price: Money::parse(price, currency).unwrap(),
    }
}

fn place(items: Vec<LineItem>) -> PlaceOrder {
    PlaceOrder {
        id: OrderId(Uuid::now_v7()),
        number: OrderNumber::from_sequence(42).unwrap(),
        user_id: UserId::parse("usr_abc123").unwrap(),
        currency: usd(),
        items,
        details: OrderDetails {
            shipping_address: Some(address()),
            billing_address: Some(address()),
            shipping_method: Some("standard".into()),
            notes: None,
            payment_method: None,
        },
        charges: Charges::default(),
    }
}

/// A tiny harness: the history so far and the order it replays to.
#[derive(Clone)]
struct Given {
    history: Vec<Recorded>,
}

impl Given {
    fn placed() -> Given {
        let command = place(vec![item("29.99", 2, usd())]);
        let id = command.id;
        let events = Order::place(command).unwrap();
        let mut given = Given {
            history: Vec::new(),
        };
        given.record(id, events);
        given
    }

    fn then(mut self, command: OrderCommand) -> Given {
        let order = self.order();
        let events = order.handle(command).unwrap();
        self.record(order.id, events);
        self
    }

    fn record(&mut self, id: OrderId, events: Vec<OrderEvent>) {
        for event in events {
            let sequence = self.history.len() as u32 + 1;
            self.history.push(Recorded {
                order_id: id,
                sequence,
                occurred_at: T0 + time::Duration::minutes(i64::from(sequence)),
                event,
            });
        }
    }

    fn order(&self) -> Order {
        Order::replay(&self.history).unwrap()
    }

    fn when(&self, command: OrderCommand) -> Result<Vec<OrderEvent>, RuleViolation> {
        self.order().handle(command)
    }
}

fn ship() -> OrderCommand {
    OrderCommand::Ship(Shipment::default())
}

fn cancel() -> OrderCommand {
    OrderCommand::Cancel {
        reason: Some("changed my mind".into()),
    }
}

#[test]
fn placing_an_order_computes_its_totals_from_the_items() {
    let command = place(vec![item("29.99", 2, usd()), item("0.05", 3, usd())]);
    let events = Order::place(command).unwrap();
    let [OrderEvent::Created(created)] = events.as_slice() else {
        panic!("expected one order.created, got {events:?}");
    };
    assert_eq!(created.totals.subtotal.to_string(), "60.13");
    assert_eq!(created.totals.total.to_string(), "60.13");
    assert_eq!(created.totals.tax.minor(), 0);
}

#[test]
fn a_placed_order_is_pending_at_version_one() {
    let order = Given::placed().order();
    assert_eq!(order.status, OrderStatus::Pending);
    assert_eq!(order.payment_status, PaymentStatus::Pending);
    assert_eq!(order.version, 1);
    assert_eq!(order.created_at, order.updated_at);
}

#[test]
fn an_order_without_items_is_refused() {
    assert_eq!(Order::place(place(vec![])), Err(RuleViolation::NoItems));
}

#[test]
fn an_order_with_too_many_items_is_refused() {
    let items = (0..=super::MAX_ITEMS)
        .map(|_| item("1.00", 1, usd()))
        .collect();
    assert_eq!(Order::place(place(items)), Err(RuleViolation::TooManyItems));
}

#[test]
fn items_in_another_currency_are_refused() {
    let eur = Currency::parse("EUR").unwrap();
    let result = Order::place(place(vec![item("1.00", 1, usd()), item("1.00", 1, eur)]));
    assert!(matches!(
        result,
        Err(RuleViolation::MixedCurrencies { index: 1, .. })
    ));
}

#[test]
fn an_overflowing_total_is_refused() {
    let items = (0..20)
        .map(|_| item("9999999999999.99", 10_000, usd()))
        .collect();
    assert_eq!(
        Order::place(place(items)),
        Err(RuleViolation::TotalTooLarge)
    );
}

#[test]
fn paying_a_pending_order_records_the_amount() {
    let given = Given::placed();
    let events = given.when(OrderCommand::MarkPaid).unwrap();
    assert_eq!(
        events,
        vec![OrderEvent::Paid(OrderPaid {
            amount: Money::parse("59.98", usd()).unwrap(),
            payment_id: None,
            authorized: false,
        })]
    );
    let order = given.then(OrderCommand::MarkPaid).order();
    assert_eq!(
        (order.status, order.payment_status),
        (OrderStatus::Paid, PaymentStatus::Paid)
    );
    assert_eq!(order.version, 2);
}

#[test]
fn the_lifecycle_runs_to_delivered() {
    let order = Given::placed()
        .then(OrderCommand::MarkPaid)
        .then(OrderCommand::Ship(Shipment::default()))
        .then(OrderCommand::Deliver)
        .order();
    assert_eq!(order.status, OrderStatus::Delivered);
    assert_eq!(order.version, 4);
    assert_eq!(order.updated_at, T0 + time::Duration::minutes(4));
}

#[test]
fn cancelling_records_the_previous_status_and_reason() {
    for given in [
        Given::placed(),
        Given::placed().then(OrderCommand::MarkPaid),
        Given::placed()
            .then(OrderCommand::MarkPaid)
            .then(OrderCommand::Ship(Shipment::default())),
    ] {
        let from = given.order().status;
        assert_eq!(
            given.when(cancel()).unwrap(),
            vec![OrderEvent::Cancelled(OrderCancelled {
                from,
                reason: Some("changed my mind".into())
            })]
        );
        let order = given.then(cancel()).order();
        assert_eq!(order.status, OrderStatus::Cancelled);
        assert_eq!(
            order.cancellation_reason.as_deref(),
            Some("changed my mind")
        );
    }
}

#[test]
fn skipping_or_going_backwards_is_an_invalid_transition() {
    let invalid = |given: &Given, command: OrderCommand, from, to| {
        assert_eq!(
            given.when(command),
            Err(RuleViolation::InvalidTransition { from, to })
        );
    };
    use OrderStatus::*;
    let pending = Given::placed();
    invalid(
        &pending,
        OrderCommand::Ship(Shipment::default()),
        Pending,
        Shipped,
    );
    invalid(&pending, OrderCommand::Deliver, Pending, Delivered);
    let delivered = Given::placed()
        .then(OrderCommand::MarkPaid)
        .then(OrderCommand::Ship(Shipment::default()))
        .then(OrderCommand::Deliver);
    invalid(&delivered, cancel(), Delivered, Cancelled);
    invalid(&delivered, OrderCommand::MarkPaid, Delivered, Paid);
    let cancelled = Given::placed().then(cancel());
    invalid(&cancelled, OrderCommand::MarkPaid, Cancelled, Paid);
    invalid(
        &cancelled,
        OrderCommand::Ship(Shipment::default()),
        Cancelled,
        Shipped,
    );
}

#[test]
fn nothing_leads_back_to_pending() {
    assert_eq!(
        OrderCommand::to_reach(OrderStatus::Pending, None, Shipment::default()),
        None
    );
    for status in OrderStatus::ALL {
        assert!(!status.can_become(OrderStatus::Pending));
    }
}

#[test]
fn asking_for_the_current_status_again_changes_nothing() {
    let paid = Given::placed().then(OrderCommand::MarkPaid);
    assert_eq!(paid.when(OrderCommand::MarkPaid), Ok(vec![]));
    let cancelled = Given::placed().then(cancel());
    assert_eq!(cancelled.when(cancel()), Ok(vec![]));
}

fn money(amount: &str) -> Money {
    Money::parse(amount, usd()).unwrap()
}

#[test]
fn a_successful_payment_of_the_total_pays_the_order() {
    let given = Given::placed();
    let payment_id = Uuid::now_v7();
    let events = given
        .when(OrderCommand::ConfirmPayment {
            payment_id,
            amount: money("59.98"),
        })
        .unwrap();
    assert_eq!(
        events,
        vec![OrderEvent::Paid(OrderPaid {
            amount: money("59.98"),
            payment_id: Some(payment_id),
            authorized: false,
        })]
    );
}

#[test]
fn a_charge_of_another_amount_or_currency_is_rejected_and_the_order_stays_payable() {
    let given = Given::placed();
    let eur = Currency::parse("EUR").unwrap();
    for amount in [money("59.97"), Money::parse("59.98", eur).unwrap()] {
        let payment_id = Uuid::now_v7();
        let confirm = OrderCommand::ConfirmPayment { payment_id, amount };
        let events = given.when(confirm.clone()).unwrap();
        let [OrderEvent::PaymentRejected(rejected)] = events.as_slice() else {
            panic!("expected a rejected charge, got {events:?}");
        };
        assert_eq!((rejected.payment_id, rejected.amount), (payment_id, amount));
        assert!(
            rejected.reason.starts_with("amount_mismatch"),
            "{}",
            rejected.reason
        );
        let after = given.clone().then(confirm.clone());
        let order = after.order();
        assert_eq!(
            (order.status, order.payment_status),
            (OrderStatus::Pending, PaymentStatus::Failed)
        );
        // The same charge again (a redelivery) changes nothing more.
        assert_eq!(after.when(confirm), Ok(vec![]));
    }
}

#[test]
fn a_failed_payment_leaves_the_order_pending_and_payable() {
    let failure = || OrderCommand::RecordPaymentFailure {
        payment_id: Some(Uuid::now_v7()),
        reason: "card_declined".into(),
    };
    let given = Given::placed().then(failure());
    let order = given.order();
    assert_eq!(
        (order.status, order.payment_status),
        (OrderStatus::Pending, PaymentStatus::Failed)
    );
    let paid = given
        .then(OrderCommand::ConfirmPayment {
            payment_id: Uuid::now_v7(),
            amount: money("59.98"),
        })
        .order();
    assert_eq!(
        (paid.status, paid.payment_status),
        (OrderStatus::Paid, PaymentStatus::Paid)
    );
    // A late failure of an earlier attempt changes nothing once paid.
    let late = Given::placed().then(OrderCommand::ConfirmPayment {
        payment_id: Uuid::now_v7(),
        amount: money("59.98"),
    });
    assert_eq!(late.when(failure()), Ok(vec![]));
}

#[test]
fn a_charge_reaching_a_cancelled_or_paid_order_is_rejected_once_then_refunded() {
    let payment_id = Uuid::now_v7();
    let confirm = OrderCommand::ConfirmPayment {
        payment_id,
        amount: money("59.98"),
    };
    for (given, reason) in [
        (Given::placed().then(cancel()), "order_cancelled"),
        (Given::placed().then(OrderCommand::MarkPaid), "order_paid"),
        (
            Given::placed().then(OrderCommand::ConfirmPayment {
                payment_id: Uuid::now_v7(),
                amount: money("59.98"),
            }),
            "order_paid",
        ),
    ] {
        let status = given.order().status;
        assert_eq!(
            given.when(confirm.clone()).unwrap(),
            vec![OrderEvent::PaymentRejected(
                super::events::OrderPaymentRejected {
                    payment_id,
                    amount: money("59.98"),
                    reason: reason.into(),
                }
            )]
        );
        let rejected = given.clone().then(confirm.clone());
        assert_eq!(rejected.when(confirm.clone()), Ok(vec![]));
        let refund = OrderCommand::RecordRefund {
            payment_id,
            refund_id: None,
            amount: money("59.98"),
        };
        let refunded = rejected.then(refund.clone());
        assert_eq!(
            refunded.order().status,
            status,
            "a rejected charge's refund moves nothing"
        );
        assert_eq!(refunded.when(refund), Ok(vec![]));
        assert_eq!(refunded.when(confirm.clone()), Ok(vec![]));
    }
    // The charge that paid the order is not rejected when it comes again.
    let paid = Given::placed().then(confirm.clone());
    assert_eq!(paid.when(confirm), Ok(vec![]));
}

#[test]
fn partial_refunds_add_up_and_an_order_refunded_in_full_cannot_ship() {
    let payment_id = Uuid::now_v7();
    let refund = |refund_id: Uuid, amount: &str| OrderCommand::RecordRefund {
        payment_id,
        refund_id: Some(refund_id),
        amount: money(amount),
    };
    let paid = Given::placed().then(OrderCommand::ConfirmPayment {
        payment_id,
        amount: money("59.98"),
    });
    let first = Uuid::now_v7();
    let partly = paid.then(refund(first, "29.99"));
    assert_eq!(partly.order().status, OrderStatus::Paid);
    assert_eq!(
        partly.order().payment_status,
        PaymentStatus::PartiallyRefunded
    );
    // The same refund again (a redelivery) changes nothing.
    assert_eq!(partly.when(refund(first, "29.99")), Ok(vec![]));
    // Partly refunded: it still ships.
    assert!(partly.when(ship()).is_ok());
    let whole = partly.then(refund(Uuid::now_v7(), "29.99"));
    assert_eq!(whole.order().payment_status, PaymentStatus::Refunded);
    assert_eq!(whole.when(ship()), Err(RuleViolation::PaymentRefunded));
    // It can still be cancelled.
    assert!(whole.when(cancel()).is_ok());
}

#[test]
fn an_authorized_order_ships_only_once_its_capture_succeeds() {
    let payment_id = Uuid::now_v7();
    let authorized = Given::placed().then(OrderCommand::ConfirmAuthorization {
        payment_id,
        amount: money("59.98"),
    });
    assert_eq!(
        (authorized.order().status, authorized.order().payment_status),
        (OrderStatus::Paid, PaymentStatus::Authorized)
    );
    let shipment = Shipment {
        carrier: Some("UPS".into()),
        tracking_number: Some("1Z999".into()),
    };
    // Shipping asks for the capture; the order is not shipped yet.
    let asked = authorized
        .clone()
        .then(OrderCommand::Ship(shipment.clone()));
    assert_eq!(asked.order().status, OrderStatus::Paid);
    assert!(matches!(
        asked.history.last().unwrap().event,
        OrderEvent::CaptureRequested(_)
    ));
    // Asking again (a retry) asks nothing more.
    assert_eq!(asked.when(ship()), Ok(vec![]));
    // A declined capture leaves it unshipped; shipping may be asked again.
    let declined = asked.clone().then(OrderCommand::RecordCaptureFailure {
        payment_id,
        reason: "capture_declined".into(),
    });
    assert_eq!(declined.order().status, OrderStatus::Paid);
    assert_eq!(declined.order().ledger.capture_pending, None);
    // The capture ships it with the shipment asked for, once.
    let capture = OrderCommand::RecordCapture {
        payment_id,
        amount: money("59.98"),
    };
    let shipped = asked.clone().then(capture.clone());
    let order = shipped.order();
    assert_eq!(
        (order.status, order.payment_status),
        (OrderStatus::Shipped, PaymentStatus::Paid)
    );
    assert_eq!(order.shipment, shipment);
    assert_eq!(shipped.when(capture), Ok(vec![]));
    // Cancelled before the capture: the release is recorded.
    let voided = authorized
        .clone()
        .then(cancel())
        .then(OrderCommand::RecordVoid {
            payment_id,
            reason: None,
        });
    assert_eq!(voided.order().payment_status, PaymentStatus::Voided);
    // An authorization that expired while the order waited to ship: the
    // money is no longer secured, so the order is cancelled, never shipped.
    let expired = authorized.then(OrderCommand::RecordVoid {
        payment_id,
        reason: Some("authorization_expired".into()),
    });
    let order = expired.order();
    assert_eq!(
        (order.status, order.payment_status),
        (OrderStatus::Cancelled, PaymentStatus::Voided)
    );
    assert_eq!(
        order.cancellation_reason.as_deref(),
        Some("authorization_expired")
    );
    assert!(expired.when(ship()).is_err());
}

#[test]
fn a_cancelled_orders_late_charge_once_refunded_shows_refunded() {
    let payment_id = Uuid::now_v7();
    let charge = OrderCommand::ConfirmPayment {
        payment_id,
        amount: money("59.98"),
    };
    let rejected = Given::placed().then(cancel()).then(charge);
    assert_eq!(rejected.order().payment_status, PaymentStatus::Pending);
    let refunded = rejected.then(OrderCommand::RecordRefund {
        payment_id,
        refund_id: Some(Uuid::now_v7()),
        amount: money("59.98"),
    });
    assert_eq!(refunded.order().payment_status, PaymentStatus::Refunded);
}

#[test]
fn a_refund_is_recorded_once_on_a_paid_order() {
    let payment_id = Uuid::now_v7();
    let refund = || OrderCommand::RecordRefund {
        payment_id,
        refund_id: None,
        amount: money("59.98"),
    };
    let given = Given::placed()
        .then(OrderCommand::ConfirmPayment {
            payment_id,
            amount: money("59.98"),
        })
        .then(cancel());
    assert_eq!(
        given.when(refund()).unwrap(),
        vec![OrderEvent::Refunded(OrderRefunded {
            payment_id,
            amount: money("59.98"),
            refund_id: None,
        })]
    );
    let refunded = given.then(refund());
    assert_eq!(refunded.order().payment_status, PaymentStatus::Refunded);
    assert_eq!(refunded.when(refund()), Ok(vec![]));
    let _ = OrderPaymentFailed {
        payment_id: None,
        reason: String::new(),
    };
}

#[test]
fn an_unpaid_order_expires_but_a_paid_one_does_not() {
    let pending = Given::placed();
    assert_eq!(
        pending.when(OrderCommand::Expire).unwrap(),
        vec![OrderEvent::Cancelled(OrderCancelled {
            from: OrderStatus::Pending,
            reason: Some("payment_timeout".into())
        })]
    );
    let paid = Given::placed().then(OrderCommand::MarkPaid);
    assert_eq!(paid.when(OrderCommand::Expire), Ok(vec![]));
    let cancelled = Given::placed().then(cancel());
    assert_eq!(cancelled.when(OrderCommand::Expire), Ok(vec![]));
}

#[test]
fn a_history_with_a_gap_does_not_replay() {
    let mut given = Given::placed().then(OrderCommand::MarkPaid);
    given.history[1].sequence = 3;
    assert_eq!(
        Order::replay(&given.history),
        Err(ReplayError::Gap {
            expected: 2,
            found: 3
        })
    );
    assert_eq!(Order::replay(&[]), Err(ReplayError::Empty));
    let paid_first = Given::placed()
        .then(OrderCommand::MarkPaid)
        .history
        .split_off(1);
    assert_eq!(
        Order::replay(&paid_first),
        Err(ReplayError::NotCreatedFirst)
    );
}

#[test]
fn stored_events_decode_back_to_themselves() {
    let given = Given::placed().then(OrderCommand::MarkPaid).then(cancel());
    for recorded in &given.history {
        let payload = serde_json::to_value(&recorded.event).unwrap();
        let event = &recorded.event;
        let decoded =
            OrderEvent::decode(event.event_type(), event.event_version(), payload).unwrap();
        assert_eq!(&decoded, event);
    }
    assert!(OrderEvent::decode("order.exploded", 1, serde_json::json!({})).is_err());
}

fn is_void(command: &OrderCommand) -> bool {
    matches!(command, OrderCommand::RecordVoid { .. })
}

fn is_capture(command: &OrderCommand) -> bool {
    matches!(command, OrderCommand::RecordCapture { .. })
}

fn any_command() -> impl Strategy<Value = OrderCommand> {
    prop_oneof![
        Just(OrderCommand::MarkPaid),
        Just(OrderCommand::Ship(Shipment::default())),
        Just(OrderCommand::Deliver),
        proptest::option::of("[a-z ]{0,12}").prop_map(|reason| OrderCommand::Cancel { reason }),
        (0_i64..3).prop_map(|delta| OrderCommand::ConfirmPayment {
            payment_id: Uuid::now_v7(),
            // The first order in a run totals whatever; most confirmations
            // will mismatch, some runs match exactly via the total below.
            amount: Money::from_minor(delta, usd()).unwrap(),
        }),
        (0_i64..3).prop_map(|delta| OrderCommand::ConfirmAuthorization {
            payment_id: Uuid::now_v7(),
            amount: Money::from_minor(delta, usd()).unwrap(),
        }),
        // Aimed at the paying payment below.
        Just(OrderCommand::RecordCapture {
            payment_id: Uuid::nil(),
            amount: Money::zero(usd()),
        }),
        Just(OrderCommand::RecordCaptureFailure {
            payment_id: Uuid::nil(),
            reason: "capture_declined".into(),
        }),
        Just(OrderCommand::RecordVoid {
            payment_id: Uuid::nil(),
            reason: Some("authorization_expired".into()),
        }),
        // Aimed at the order's lines and returns below.
        (0_i64..4).prop_map(|quantity| OrderCommand::RequestReturn {
            return_id: Uuid::now_v7(),
            lines: vec![ReturnLine {
                item_id: Uuid::nil(),
                quantity: Quantity::parse(quantity.max(1)).unwrap(),
            }],
            reason: "damaged".into(),
            now: T0,
            policy: ReturnPolicy::default(),
        }),
        Just(OrderCommand::ReceiveReturn {
            return_id: Uuid::nil(),
        }),
        Just(OrderCommand::RecordPaymentFailure {
            payment_id: None,
            reason: "card_declined".into()
        }),
        Just(OrderCommand::RecordRefund {
            payment_id: Uuid::nil(),
            refund_id: None,
            amount: Money::zero(usd())
        }),
        Just(OrderCommand::Expire),
        (1_i64..1_000_000, 1_i64..=20).prop_map(|(minor, quantity)| OrderCommand::AddItem {
            item: LineItem {
                unit_price: Money::from_minor(minor, usd()).unwrap(),
                ..item("0", quantity, usd())
            }
        }),
        (1_i64..=50).prop_map(|quantity| OrderCommand::ChangeItem {
            item_id: Uuid::nil(),
            quantity: Quantity::parse(quantity).unwrap()
        }),
        Just(OrderCommand::RemoveItem {
            item_id: Uuid::nil()
        }),
    ]
}

fn any_coupon() -> impl Strategy<Value = Option<AppliedCoupon>> {
    let minimum = proptest::option::of(0_i64..50_000_000);
    prop_oneof![
        Just(None),
        (0_u32..=10_000, minimum.clone()).prop_map(|(bp, min)| Some(AppliedCoupon {
            code: "PERCENT".into(),
            discount: Discount::PercentBp(bp),
            min_subtotal: min.map(|m| Money::from_minor(m, usd()).unwrap()),
        })),
        (0_i64..100_000_000, minimum).prop_map(|(amount, min)| Some(AppliedCoupon {
            code: "FIXED".into(),
            discount: Discount::Fixed(Money::from_minor(amount, usd()).unwrap()),
            min_subtotal: min.map(|m| Money::from_minor(m, usd()).unwrap()),
        })),
    ]
}

fn any_items() -> impl Strategy<Value = Vec<(i64, i64)>> {
    proptest::collection::vec((0_i64..10_000_000, 1_i64..=100), 1..8)
}

proptest! {
    /// Whatever commands arrive, in whatever order: the status only moves along
    /// allowed edges, the sequence stays gap-free, the totals stay consistent,
    /// and replaying the history rebuilds the live state.
    #[test]
    fn no_command_sequence_breaks_the_invariants(
        items in any_items(),
        commands in proptest::collection::vec(any_command(), 0..16),
        tax_rate_bp in 0_u32..=2_500,
        shipping in 0_i64..10_000,
        coupon in any_coupon(),
    ) {
        let items: Vec<LineItem> = items
            .into_iter()
            .map(|(minor, quantity)| LineItem {
                unit_price: Money::from_minor(minor, usd()).unwrap(),
                ..item("0", quantity, usd())
            })
            .collect();
        let mut command = place(items);
        command.charges = Charges {
            tax_rate_bp,
            shipping: Some(Money::from_minor(shipping, usd()).unwrap()),
            coupon: coupon.clone(),
        };
        let id = command.id;
        let mut given = Given { history: Vec::new() };
        given.record(id, Order::place(command).unwrap());
        let mut live = given.order();

        for command in commands {
            // Let some confirmations carry exactly the total, and point item
            // edits at a line the order has.
            let first_line = live.items[0].id;
            let command = match command {
                OrderCommand::ConfirmPayment { payment_id, amount } if amount.minor() == 0 => {
                    OrderCommand::ConfirmPayment { payment_id, amount: live.totals.total }
                }
                OrderCommand::ConfirmAuthorization { payment_id, amount } if amount.minor() == 0 => {
                    OrderCommand::ConfirmAuthorization { payment_id, amount: live.totals.total }
                }
                OrderCommand::RecordCapture { .. } => OrderCommand::RecordCapture {
                    payment_id: live.ledger.paid_by.unwrap_or_default(),
                    amount: live.ledger.paid.unwrap_or(live.totals.total),
                },
                OrderCommand::RecordCaptureFailure { reason, .. } => OrderCommand::RecordCaptureFailure {
                    payment_id: live.ledger.paid_by.unwrap_or_default(),
                    reason,
                },
                OrderCommand::RequestReturn { return_id, lines, reason, policy, .. } => {
                    OrderCommand::RequestReturn {
                        return_id,
                        lines: lines
                            .into_iter()
                            .map(|line| ReturnLine { item_id: first_line, ..line })
                            .collect(),
                        reason,
                        now: live.completed_at.unwrap_or(live.updated_at),
                        policy,
                    }
                }
                OrderCommand::ReceiveReturn { .. } => OrderCommand::ReceiveReturn {
                    return_id: live
                        .returns
                        .iter()
                        .find(|r| r.status == ReturnStatus::Requested)
                        .map_or_else(Uuid::now_v7, |r| r.id),
                },
                OrderCommand::RecordVoid { reason, .. } => OrderCommand::RecordVoid {
                    payment_id: live.ledger.paid_by.unwrap_or_default(),
                    reason,
                },
                OrderCommand::ChangeItem { quantity, .. } => OrderCommand::ChangeItem { item_id: first_line, quantity },
                OrderCommand::RemoveItem { .. } => OrderCommand::RemoveItem { item_id: first_line },
                other => other,
            };
            let before = live.status;
            match live.handle(command.clone()) {
                Ok(events) => {
                    // One event, or a void that cancels its paid order.
                    prop_assert!(events.len() <= 1 || is_void(&command));
                    let start = given.history.len();
                    given.record(id, events);
                    for recorded in &given.history[start..] {
                        live.apply(recorded).unwrap();
                    }
                    let after = live.status;
                    prop_assert!(after == before || before.can_become(after),
                        "{} -> {} is not an edge", before, after);
                    match command.target() {
                        // Shipping an authorized order waits for its capture.
                        Some(OrderStatus::Shipped) if after == OrderStatus::Paid => {
                            prop_assert!(live.ledger.capture_pending.is_some());
                            prop_assert_eq!(live.payment_status, PaymentStatus::Authorized);
                        }
                        Some(target) => prop_assert_eq!(after, target),
                        None => prop_assert!(
                            after == before
                                || (before == OrderStatus::Pending
                                    && matches!(after, OrderStatus::Paid | OrderStatus::Cancelled))
                                || (before == OrderStatus::Paid
                                    && after == OrderStatus::Shipped
                                    && is_capture(&command))
                                || (before == OrderStatus::Paid
                                    && after == OrderStatus::Cancelled
                                    && is_void(&command))
                        ),
                    }
                }
                Err(RuleViolation::InvalidTransition { from, to }) => {
                    prop_assert_eq!(from, before);
                    prop_assert!(!before.can_become(to));
                }
                Err(RuleViolation::ItemsFrozen { status }) => prop_assert_ne!(status, OrderStatus::Pending),
                Err(RuleViolation::NoItems) => prop_assert_eq!(live.items.len(), 1),
                Err(RuleViolation::TooManyItems) => prop_assert_eq!(live.items.len(), super::MAX_ITEMS),
                Err(RuleViolation::PaymentVoided) => prop_assert_eq!(live.payment_status, PaymentStatus::Voided),
                Err(RuleViolation::NotReturnable { status }) => prop_assert_ne!(status, OrderStatus::Delivered),
                Err(RuleViolation::ReturnExceedsQuantity { .. } | RuleViolation::UnknownReturn(_)) => {}
                Err(other) => prop_assert!(false, "unexpected violation {other:?}"),
            }
            let sequences: Vec<u32> = given.history.iter().map(|r| r.sequence).collect();
            prop_assert_eq!(sequences, (1..=given.history.len() as u32).collect::<Vec<_>>());
            prop_assert_eq!(live.version as usize, given.history.len());
            // The total always equals the sum of its parts, from the live lines.
            let totals = live.totals;
            let expected_subtotal: i64 = live
                .items
                .iter()
                .map(|item| item.unit_price.minor() * i64::from(item.quantity.get()))
                .sum();
            prop_assert_eq!(totals.subtotal.minor(), expected_subtotal);
            // The discount is the coupon's on the live subtotal: nothing
            // below its minimum, never more than the subtotal.
            let expected_discount = match &coupon {
                None => 0,
                Some(coupon) if coupon.min_subtotal.is_some_and(|m| expected_subtotal < m.minor()) => 0,
                Some(AppliedCoupon { discount: Discount::PercentBp(bp), .. }) => {
                    (i128::from(expected_subtotal) * i128::from(*bp) + 5_000) as i64 / 10_000
                }
                Some(AppliedCoupon { discount: Discount::Fixed(amount), .. }) => amount.minor().min(expected_subtotal),
            };
            prop_assert_eq!(totals.discount.minor(), expected_discount);
            prop_assert!(totals.discount.minor() <= totals.subtotal.minor());
            prop_assert_eq!(totals.tax, totals.subtotal.saturating_sub(totals.discount).unwrap().apply_rate_bp(tax_rate_bp).unwrap());
            prop_assert_eq!(totals.shipping.minor(), shipping);
            prop_assert_eq!(
                totals.total.minor(),
                (totals.subtotal.minor() - totals.discount.minor()).max(0)
                    + totals.tax.minor() + totals.shipping.minor()
            );
            prop_assert_eq!(&Order::replay(&given.history).unwrap(), &live);
            // Paid exactly when a payment paid it and that payment was not
            // refunded; every other successful charge is rejected, once.
            let paid_by = given.history.iter().find_map(|r| match &r.event {
                OrderEvent::Paid(paid) => Some(paid.payment_id),
                _ => None,
            });
            let refunded = |id: Option<Uuid>| given.history.iter().any(|r| {
                matches!(&r.event, OrderEvent::Refunded(refund) if Some(refund.payment_id) == id)
            });
            // Manual capture: held until a capture, or released by a void.
            let held = given.history.iter().any(|r| matches!(&r.event, OrderEvent::Paid(paid) if paid.authorized))
                && !given.history.iter().any(|r| matches!(&r.event,
                    OrderEvent::Shipped(OrderShipped { captured: Some(_), .. }) | OrderEvent::PaymentCaptured(_)));
            let voided = given.history.iter().any(|r| matches!(r.event, OrderEvent::PaymentVoided(_)));
            prop_assert_eq!(
                live.payment_status == PaymentStatus::Paid,
                paid_by.is_some() && !refunded(paid_by.flatten()) && !held && !voided
            );
            prop_assert_eq!(live.payment_status == PaymentStatus::Authorized, held && !voided);
            // Nothing ships while its money is only held.
            prop_assert!(!(held && matches!(live.status, OrderStatus::Shipped | OrderStatus::Delivered)));
            // Returns: never more units than ordered, never more money back
            // than was paid for the goods.
            for item in &live.items {
                let returned: u32 = live.returns.iter().flat_map(|r| &r.lines)
                    .filter(|l| l.item_id == item.id).map(|l| l.quantity.get()).sum();
                prop_assert!(returned <= item.quantity.get());
            }
            let returned_money: i64 = received(&given).iter().map(Money::minor).sum();
            prop_assert!(returned_money <= totals.total.minor() - totals.shipping.minor());
            prop_assert!(live.returns.is_empty() || live.completed_at.is_some());
            let paid_events = given.history.iter().filter(|r| matches!(r.event, OrderEvent::Paid(_))).count();
            prop_assert!(paid_events <= 1, "an order is paid once");
        }
    }
}

/// One step of the choreography between a client, orders and payments.
#[derive(Debug, Clone)]
enum Step {
    /// The client pays what it last saw as the total (payments checks the
    /// order as it is now, then charges; the charge is in flight until
    /// `Settle`). `declined` cards fail.
    Pay {
        declined: bool,
    },
    /// The provider answers the oldest charge in flight.
    Settle,
    Cancel,
    AddItem,
    /// An operator marks the order paid (outside the payment flow).
    MarkPaid,
    /// The client refreshes what it believes the total is.
    Look,
    /// A message is delivered (index into those in flight); `again` keeps a
    /// copy for a redelivery.
    Deliver {
        pick: usize,
        again: bool,
    },
    /// A refund job runs.
    Refund,
}

fn any_step() -> impl Strategy<Value = Step> {
    prop_oneof![
        any::<bool>().prop_map(|declined| Step::Pay { declined }),
        Just(Step::Settle),
        Just(Step::Cancel),
        Just(Step::AddItem),
        Just(Step::MarkPaid),
        Just(Step::Look),
        (any::<usize>(), any::<bool>()).prop_map(|(pick, again)| Step::Deliver { pick, again }),
        Just(Step::Refund),
    ]
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Charge {
    Processing,
    Succeeded,
    Failed,
    Refunded,
}

#[derive(Debug, Clone)]
enum Message {
    /// payments → orders
    Successful(Uuid, Money),
    Refunded(Uuid, Money),
    /// orders → payments
    Cancelled,
    RefundRequested(Uuid),
}

/// Payments' side of the model: the rules of `payments::domain` and its
/// service (one live charge per order, refunds as deduplicated jobs, a
/// success for an order known cancelled is refunded).
#[derive(Default)]
struct PaymentsModel {
    charges: Vec<(Uuid, Money, Charge)>,
    in_flight: Vec<(usize, bool)>,
    refund_jobs: Vec<Uuid>,
    knows_cancelled: bool,
}

impl PaymentsModel {
    fn enqueue_refund(&mut self, id: Uuid) {
        if !self.refund_jobs.contains(&id) {
            self.refund_jobs.push(id);
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2_000))]
    /// Whatever interleaving of paying, cancelling, editing, redelivering and
    /// refunding happens, once everything in flight has landed: every
    /// successful charge either paid the order (exactly its total) or is
    /// refunded, and no order is paid twice.
    #[test]
    fn money_is_never_held_over_random_interleavings(
        steps in proptest::collection::vec(any_step(), 0..40),
    ) {
        let mut given = Given::placed();
        let id = given.order().id;
        let mut payments = PaymentsModel::default();
        let mut to_orders: Vec<Message> = Vec::new();
        let mut to_payments: Vec<Message> = Vec::new();
        let mut seen_total = given.order().totals.total;

        let mut orders_handle = |given: &mut Given, command: OrderCommand,
                                 to_payments: &mut Vec<Message>| {
            let order = given.order();
            if let Ok(events) = order.handle(command) {
                for event in &events {
                    match event {
                        OrderEvent::Cancelled(_) => to_payments.push(Message::Cancelled),
                        OrderEvent::PaymentRejected(rejected) => {
                            to_payments.push(Message::RefundRequested(rejected.payment_id));
                        }
                        _ => {}
                    }
                }
                given.record(id, events);
            }
        };

        let run = |step: Step, given: &mut Given, payments: &mut PaymentsModel,
                   to_orders: &mut Vec<Message>, to_payments: &mut Vec<Message>,
                   seen_total: &mut Money,
                   orders_handle: &mut dyn FnMut(&mut Given, OrderCommand, &mut Vec<Message>)| {
            match step {
                Step::Pay { declined } => {
                    let order = given.order();
                    let live = payments.charges.iter().any(|(_, _, c)| matches!(c, Charge::Processing | Charge::Succeeded));
                    // check_payable: pending and exactly the current total.
                    if order.status == OrderStatus::Pending && *seen_total == order.totals.total && !live {
                        payments.charges.push((Uuid::now_v7(), *seen_total, Charge::Processing));
                        payments.in_flight.push((payments.charges.len() - 1, declined));
                    }
                }
                Step::Settle => {
                    if !payments.in_flight.is_empty() {
                        let (index, declined) = payments.in_flight.remove(0);
                        let (charge_id, amount, _) = payments.charges[index];
                        if declined {
                            payments.charges[index].2 = Charge::Failed;
                        } else {
                            payments.charges[index].2 = Charge::Succeeded;
                            to_orders.push(Message::Successful(charge_id, amount));
                            if payments.knows_cancelled {
                                payments.enqueue_refund(charge_id);
                            }
                        }
                    }
                }
                Step::Cancel => orders_handle(given, cancel(), to_payments),
                Step::AddItem => orders_handle(
                    given,
                    OrderCommand::AddItem { item: item("1.00", 1, usd()) },
                    to_payments,
                ),
                Step::MarkPaid => orders_handle(given, OrderCommand::MarkPaid, to_payments),
                Step::Look => *seen_total = given.order().totals.total,
                Step::Deliver { pick, again } => {
                    let total = to_orders.len() + to_payments.len();
                    if total == 0 {
                        return;
                    }
                    let pick = pick % total;
                    let message = if pick < to_orders.len() {
                        if again { to_orders[pick].clone() } else { to_orders.remove(pick) }
                    } else {
                        let pick = pick - to_orders.len();
                        if again { to_payments[pick].clone() } else { to_payments.remove(pick) }
                    };
                    match message {
                        Message::Successful(payment_id, amount) => orders_handle(
                            given,
                            OrderCommand::ConfirmPayment { payment_id, amount },
                            to_payments,
                        ),
                        Message::Refunded(payment_id, amount) => orders_handle(
                            given,
                            OrderCommand::RecordRefund { payment_id, refund_id: None, amount },
                            to_payments,
                        ),
                        Message::Cancelled => {
                            payments.knows_cancelled = true;
                            let succeeded: Vec<Uuid> = payments.charges.iter()
                                .filter(|(_, _, c)| *c == Charge::Succeeded)
                                .map(|(id, _, _)| *id)
                                .collect();
                            for charge in succeeded {
                                payments.enqueue_refund(charge);
                            }
                        }
                        Message::RefundRequested(payment_id) => payments.enqueue_refund(payment_id),
                    }
                }
                Step::Refund => {
                    if !payments.refund_jobs.is_empty() {
                        let job = payments.refund_jobs[0];
                        let charge = payments.charges.iter_mut().find(|(id, _, _)| *id == job);
                        match charge {
                            Some((charge_id, amount, state @ Charge::Succeeded)) => {
                                *state = Charge::Refunded;
                                to_orders.push(Message::Refunded(*charge_id, *amount));
                                payments.refund_jobs.remove(0);
                            }
                            // Not settled yet: the job waits (retried later).
                            Some((_, _, Charge::Processing)) => {}
                            _ => { payments.refund_jobs.remove(0); }
                        }
                    }
                }
            }
        };

        for step in steps {
            run(step, &mut given, &mut payments, &mut to_orders, &mut to_payments,
                &mut seen_total, &mut orders_handle);
        }
        // Everything in flight lands: charges settle, messages are
        // delivered, jobs run, until nothing is left.
        for _ in 0..200 {
            if payments.in_flight.is_empty() && to_orders.is_empty()
                && to_payments.is_empty() && payments.refund_jobs.is_empty() {
                break;
            }
            for step in [Step::Settle, Step::Deliver { pick: 0, again: false }, Step::Refund] {
                run(step, &mut given, &mut payments, &mut to_orders, &mut to_payments,
                    &mut seen_total, &mut orders_handle);
            }
        }
        prop_assert!(payments.refund_jobs.is_empty() && to_orders.is_empty() && to_payments.is_empty());

        let order = given.order();
        let paid_events = given.history.iter().filter(|r| matches!(r.event, OrderEvent::Paid(_))).count();
        prop_assert!(paid_events <= 1, "paid twice: {:?}", given.history);
        for (charge_id, amount, state) in &payments.charges {
            if *state == Charge::Succeeded {
                prop_assert_eq!(order.ledger.paid_by, Some(*charge_id),
                    "a successful charge that did not pay the order is held");
                prop_assert_eq!(*amount, order.totals.total, "paid a different total");
                prop_assert!(order.status != OrderStatus::Cancelled, "a cancelled order keeps money");
            }
        }
        if let Some(paid_by) = order.ledger.paid_by {
            prop_assert!(payments.charges.iter().any(|(id, _, s)| *id == paid_by
                && matches!(s, Charge::Succeeded | Charge::Refunded)));
        }
    }
}

/// A delivered order of 3 T-shirts at 10.00 and a mug at 5.00, with 8.25%
/// tax and 4.99 shipping, paid by `payment_id`.
fn delivered(payment_id: Uuid) -> Given {
    let mut command = place(vec![item("10.00", 3, usd()), item("5.00", 1, usd())]);
    command.charges = Charges {
        tax_rate_bp: 825,
        shipping: Some(money("4.99")),
        coupon: None,
    };
    let id = command.id;
    let mut given = Given {
        history: Vec::new(),
    };
    given.record(id, Order::place(command).unwrap());
    let total = given.order().totals.total;
    given
        .then(OrderCommand::ConfirmPayment {
            payment_id,
            amount: total,
        })
        .then(ship())
        .then(OrderCommand::Deliver)
}

fn ask_return(order: &Order, lines: &[(usize, i64)], now: OffsetDateTime) -> OrderCommand {
    OrderCommand::RequestReturn {
        return_id: Uuid::now_v7(),
        lines: lines
            .iter()
            .map(|(index, quantity)| ReturnLine {
                item_id: order.items[*index].id,
                quantity: Quantity::parse(*quantity).unwrap(),
            })
            .collect(),
        reason: "damaged".into(),
        now,
        policy: ReturnPolicy::default(),
    }
}

fn received(given: &Given) -> Vec<Money> {
    given
        .history
        .iter()
        .filter_map(|r| match &r.event {
            OrderEvent::ReturnReceived(received) => Some(received.refund),
            _ => None,
        })
        .collect()
}

#[test]
fn a_returned_line_refunds_its_share_of_discount_and_tax_never_shipping() {
    let given = delivered(Uuid::now_v7());
    let order = given.order();
    // 35.00 of goods, 2.89 tax (8.25%), 4.99 shipping: 42.88.
    assert_eq!(order.totals.total, money("42.88"));
    let now = order.completed_at.unwrap() + time::Duration::days(3);
    let asked = given.clone().then(ask_return(&order, &[(1, 1)], now));
    let id = asked.order().returns[0].id;
    assert_eq!(asked.order().returns[0].status, ReturnStatus::Requested);
    let got = asked.then(OrderCommand::ReceiveReturn { return_id: id });
    // The mug: 5.00 of 35.00 of the 37.89 paid for goods = 5.41.
    assert_eq!(received(&got), [money("5.41")]);
    // Received again: nothing more.
    assert_eq!(
        got.when(OrderCommand::ReceiveReturn { return_id: id }),
        Ok(vec![])
    );
    // Everything else back, one return at a time: exactly the goods.
    let order = got.order();
    let one = got.clone().then(ask_return(&order, &[(0, 1)], now));
    let one_id = one.order().returns[1].id;
    let one = one.then(OrderCommand::ReceiveReturn { return_id: one_id });
    let rest = one.clone().then(ask_return(&order, &[(0, 2)], now));
    let rest_id = rest.order().returns[2].id;
    let all = rest.then(OrderCommand::ReceiveReturn { return_id: rest_id });
    let refunds = received(&all);
    let sum: i64 = refunds.iter().map(Money::minor).sum();
    assert_eq!(sum, 3_789, "{refunds:?}");
    // Nothing is left to return.
    assert!(matches!(
        all.when(ask_return(&order, &[(0, 1)], now)),
        Err(RuleViolation::ReturnExceedsQuantity { returnable: 0, .. })
    ));
}

#[test]
fn only_a_delivered_order_is_returned_within_its_window_up_to_its_quantities() {
    let given = delivered(Uuid::now_v7());
    let order = given.order();
    let delivered_at = order.completed_at.unwrap();
    assert!(matches!(
        given.when(ask_return(&order, &[(0, 4)], delivered_at)),
        Err(RuleViolation::ReturnExceedsQuantity { returnable: 3, .. })
    ));
    assert!(matches!(
        given.when(ask_return(&order, &[(0, 2), (0, 2)], delivered_at)),
        Err(RuleViolation::ReturnExceedsQuantity { .. })
    ));
    assert!(matches!(
        given.when(ask_return(
            &order,
            &[(1, 1)],
            delivered_at + time::Duration::days(31)
        )),
        Err(RuleViolation::ReturnWindowClosed { .. })
    ));
    let placed = Given::placed();
    let pending = placed.order();
    assert!(matches!(
        placed.when(ask_return(&pending, &[(0, 1)], delivered_at)),
        Err(RuleViolation::NotReturnable {
            status: OrderStatus::Pending
        })
    ));
    assert!(matches!(
        given.when(OrderCommand::ReceiveReturn {
            return_id: Uuid::now_v7()
        }),
        Err(RuleViolation::UnknownReturn(_))
    ));
}

proptest! {
    /// Whatever returns are asked for and received, in whatever order: no
    /// line is returned beyond its quantity and the refunds never add up
    /// to more than was paid for the goods.
    #[test]
    fn returns_never_exceed_quantities_or_what_was_paid(
        steps in proptest::collection::vec((0_usize..2, 1_i64..4, any::<bool>()), 1..12),
    ) {
        let mut given = delivered(Uuid::now_v7());
        let start = given.order();
        let now = start.completed_at.unwrap();
        let goods = start.totals.total.minor() - start.totals.shipping.minor();
        for (line, quantity, receive) in steps {
            let order = given.order();
            if let Ok(events) = order.handle(ask_return(&order, &[(line, quantity)], now)) {
                given.record(order.id, events);
            }
            if receive {
                let order = given.order();
                if let Some(pending) = order.returns.iter().find(|r| r.status == ReturnStatus::Requested) {
                    let events = order.handle(OrderCommand::ReceiveReturn { return_id: pending.id }).unwrap();
                    given.record(order.id, events);
                }
            }
            let order = given.order();
            for item in &order.items {
                let returned: u32 = order.returns.iter().flat_map(|r| &r.lines)
                    .filter(|l| l.item_id == item.id).map(|l| l.quantity.get()).sum();
                prop_assert!(returned <= item.quantity.get());
            }
            let refunded: i64 = received(&given).iter().map(Money::minor).sum();
            prop_assert!(refunded <= goods);
        }
    }
}
