//! The language-neutral contracts under `contracts/` are generated from the
//! code. This test regenerates them and fails when a checked-in file is stale;
//! `just contracts` (UPDATE_CONTRACTS=1) rewrites them.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};

use utoipa::OpenApi;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../contracts")
}

fn pretty(value: &impl serde::Serialize) -> String {
    serde_json::to_string_pretty(value).unwrap() + "\n"
}

fn generated() -> Vec<(PathBuf, String)> {
    let mut files = vec![
        (
            PathBuf::from("openapi/orders.json"),
            pretty(&orders::api::ApiDoc::openapi()),
        ),
        (
            PathBuf::from("openapi/payments.json"),
            pretty(&payments::api::ApiDoc::openapi()),
        ),
        (
            PathBuf::from("asyncapi.yaml"),
            format!(
                "# Generated from crates/contracts (just contracts); do not edit.\n{}",
                serde_yaml::to_string(&contracts::schema::asyncapi()).unwrap()
            ),
        ),
    ];
    for (name, schema) in contracts::schema::data_schemas() {
        files.push((PathBuf::from("schemas").join(name), pretty(&schema)));
    }
    files
}

/// utoipa keeps one schema per name: a second type of the same name pulled
/// in (payments' `PaymentStatus` through a payment in an ops answer) would
/// silently replace the order's in orders' description.
#[test]
fn each_document_keeps_its_own_payment_status() {
    let status = |openapi: utoipa::openapi::OpenApi| {
        let document = serde_json::to_value(openapi).unwrap();
        document["components"]["schemas"]["PaymentStatus"]["enum"].clone()
    };
    let orders = status(orders::api::ApiDoc::openapi());
    assert!(
        orders
            .as_array()
            .unwrap()
            .contains(&serde_json::json!("paid")),
        "{orders}"
    );
    let payments = status(payments::api::ApiDoc::openapi());
    assert!(
        payments
            .as_array()
            .unwrap()
            .contains(&serde_json::json!("succeeded")),
        "{payments}"
    );
}

#[test]
fn checked_in_contracts_match_the_code() {
    let root = root();
    let update = std::env::var_os("UPDATE_CONTRACTS").is_some();
    let mut stale = Vec::new();
    for (path, content) in generated() {
        let file = root.join(&path);
        if update {
            std::fs::create_dir_all(file.parent().unwrap()).unwrap();
            std::fs::write(&file, &content).unwrap();
        } else if std::fs::read_to_string(&file).ok().as_deref() != Some(content.as_str()) {
            stale.push(path.display().to_string());
        }
    }
    assert!(
        stale.is_empty(),
        "stale contracts (run `just contracts` and commit): {stale:?}"
    );
}

#[test]
fn each_manifest_points_at_existing_contracts_and_names_its_scopes() {
    for (service, scopes) in [
        ("orders", ["orders.read", "orders.write", "orders.admin"]),
        (
            "payments",
            ["payments.read", "payments.write", "payments.admin"],
        ),
    ] {
        let dir = root().join(service);
        let manifest: serde_yaml::Value =
            serde_yaml::from_str(&std::fs::read_to_string(dir.join("service.yaml")).unwrap())
                .unwrap();
        assert_eq!(manifest["name"].as_str(), Some(service));
        for key in ["api", "events"] {
            let target = dir.join(manifest[key].as_str().unwrap());
            assert!(target.exists(), "{service}: {key} -> {}", target.display());
        }
        let required: Vec<&str> = manifest["auth"]["required_scopes"]
            .as_sequence()
            .unwrap()
            .iter()
            .filter_map(|s| s.as_str())
            .collect();
        for scope in scopes {
            assert!(required.contains(&scope), "{service} lists {scope}");
        }
    }
}

/// Every event type each service publishes or consumes is listed in its
/// manifest (`contracts/*/service.yaml`), exactly as `contracts` names them.
#[test]
fn the_manifests_list_every_event_type() {
    let orders: Vec<&str> = contracts::order::OrderEventType::ALL
        .iter()
        .map(|t| t.as_str())
        .collect();
    let payments: Vec<&str> = contracts::payment::PaymentEventType::ALL
        .iter()
        .map(|t| t.as_str())
        .collect();
    let types = |manifest: &str| -> Vec<Vec<String>> {
        let text = std::fs::read_to_string(root().join(manifest)).unwrap();
        let yaml: serde_yaml::Value = serde_yaml::from_str(&text).unwrap();
        ["publishes", "consumes"]
            .iter()
            .map(|side| {
                yaml[*side]["types"]
                    .as_sequence()
                    .unwrap()
                    .iter()
                    .map(|t| t.as_str().unwrap().to_owned())
                    .collect()
            })
            .collect()
    };
    assert_eq!(
        types("orders/service.yaml"),
        [orders.clone(), payments.clone()]
    );
    assert_eq!(types("payments/service.yaml")[0], payments);
    assert_eq!(types("payments/service.yaml")[1], ["order.cancelled"]);
}

/// `(status, problem type)` pairs an OpenAPI document lists on any
/// operation, from its `x-problem-types`.
fn documented_answers(
    openapi: &utoipa::openapi::OpenApi,
) -> std::collections::BTreeSet<(u16, String)> {
    let document = serde_json::to_value(openapi).unwrap();
    let mut answers = std::collections::BTreeSet::new();
    for item in document["paths"].as_object().unwrap().values() {
        for operation in item.as_object().unwrap().values() {
            let Some(responses) = operation["responses"].as_object() else {
                continue;
            };
            for (status, response) in responses {
                for kind in response["x-problem-types"].as_array().into_iter().flatten() {
                    answers.insert((status.parse().unwrap(), kind.as_str().unwrap().to_owned()));
                }
            }
        }
    }
    answers
}

/// Each error, through its service's one mapping, is an answer `openapi`
/// lists on some operation.
fn assert_documented<E: std::fmt::Debug>(
    service: &str,
    openapi: &utoipa::openapi::OpenApi,
    errors: Vec<E>,
) where
    platform::Problem: From<E>,
{
    let documented = documented_answers(openapi);
    for error in errors {
        let label = format!("{error:?}");
        let problem = platform::Problem::from(error);
        assert!(
            documented.contains(&(problem.status, problem.kind.clone())),
            "{service} answers {} `{}` for {label}; no operation of its OpenAPI lists it",
            problem.status,
            problem.kind
        );
    }
}

/// Every answer the error mapping can produce is documented: each kind of
/// error (one of each, an exhaustive match keeping the list whole) goes
/// through the one `From<…> for Problem` of its service, and its status and
/// `type` must be listed by the service's OpenAPI. (That each operation
/// lists what *it* answers is checked as the tests run: they run the
/// services with `http.check_contract`.)
#[test]
fn every_answer_the_error_mapping_can_give_is_documented() {
    use orders::domain::{CouponRefusal, OrderStatus, RuleViolation, Violation};
    use orders::service::OrderError;

    fn order_ordinal(error: &OrderError) -> usize {
        match error {
            OrderError::Invalid(_) => 0,
            OrderError::NotFound => 1,
            OrderError::Forbidden(_) => 2,
            OrderError::Rule(_) => 3,
            OrderError::UnknownStatus(_) => 4,
            OrderError::VersionMismatch { .. } => 5,
            OrderError::Conflict => 6,
            OrderError::KeyMismatch => 7,
            OrderError::KeyInFlight => 8,
            OrderError::HistoryFull(_) => 9,
            OrderError::UserNotFound(_) => 10,
            OrderError::InvalidCoupon(_) => 11,
            OrderError::ProductsNotFound(_) => 12,
            OrderError::InsufficientStock(_) => 13,
            OrderError::CatalogUnavailable(_) => 14,
            OrderError::UserServiceUnavailable(_) => 15,
            // A 500 is never a documented answer.
            OrderError::Unexpected(_) => 16,
        }
    }
    fn rule_ordinal(rule: &RuleViolation) -> usize {
        match rule {
            RuleViolation::NoItems => 0,
            RuleViolation::TooManyItems => 1,
            RuleViolation::MixedCurrencies { .. } => 2,
            RuleViolation::TotalTooLarge => 3,
            RuleViolation::InvalidTransition { .. } => 4,
            RuleViolation::ItemsFrozen { .. } => 5,
            RuleViolation::UnknownItem(_) => 6,
            RuleViolation::PaymentRefunded => 7,
            RuleViolation::NotReturnable { .. } => 8,
            RuleViolation::ReturnWindowClosed { .. } => 9,
            RuleViolation::ReturnExceedsQuantity { .. } => 10,
            RuleViolation::InvalidReturn(_) => 11,
            RuleViolation::UnknownReturn(_) => 12,
            RuleViolation::ShipmentRecorded => 13,
            RuleViolation::PaymentVoided => 14,
        }
    }
    let id = uuid::Uuid::nil();
    let usd = orders::domain::Currency::parse("USD").unwrap();
    let rules = vec![
        RuleViolation::NoItems,
        RuleViolation::TooManyItems,
        RuleViolation::MixedCurrencies {
            index: 1,
            expected: usd,
            found: orders::domain::Currency::parse("EUR").unwrap(),
        },
        RuleViolation::TotalTooLarge,
        RuleViolation::InvalidTransition {
            from: OrderStatus::Delivered,
            to: OrderStatus::Pending,
        },
        RuleViolation::ItemsFrozen {
            status: OrderStatus::Paid,
        },
        RuleViolation::UnknownItem(id),
        RuleViolation::PaymentRefunded,
        RuleViolation::NotReturnable {
            status: OrderStatus::Paid,
        },
        RuleViolation::ReturnWindowClosed {
            closed_at: time::OffsetDateTime::UNIX_EPOCH,
        },
        RuleViolation::ReturnExceedsQuantity {
            item_id: id,
            returnable: 1,
        },
        RuleViolation::InvalidReturn("no lines".to_owned()),
        RuleViolation::UnknownReturn(id),
        RuleViolation::ShipmentRecorded,
        RuleViolation::PaymentVoided,
    ];
    let mut errors = vec![
        OrderError::Invalid(vec![Violation::new("items", "empty")]),
        OrderError::NotFound,
        OrderError::Forbidden("not yours".to_owned()),
        OrderError::UnknownStatus("lost".to_owned()),
        OrderError::VersionMismatch {
            expected: 1,
            current: 2,
        },
        OrderError::Conflict,
        OrderError::KeyMismatch,
        OrderError::KeyInFlight,
        OrderError::HistoryFull(500),
        OrderError::UserNotFound("u".to_owned()),
        OrderError::InvalidCoupon(CouponRefusal::Unknown("X".to_owned())),
        OrderError::ProductsNotFound(vec![("items[0].product_id".to_owned(), "p".to_owned())]),
        OrderError::InsufficientStock(Vec::new()),
        OrderError::CatalogUnavailable("down".to_owned()),
        OrderError::UserServiceUnavailable("down".to_owned()),
    ];
    let rule_kinds: std::collections::BTreeSet<usize> = rules.iter().map(rule_ordinal).collect();
    assert_eq!(
        rule_kinds,
        (0..15).collect(),
        "one sample of each RuleViolation"
    );
    errors.extend(rules.into_iter().map(OrderError::Rule));
    let mut kinds: std::collections::BTreeSet<usize> = errors.iter().map(order_ordinal).collect();
    kinds.insert(16);
    assert_eq!(kinds, (0..17).collect(), "one sample of each OrderError");

    assert_documented("orders", &orders::api::ApiDoc::openapi(), errors);

    use contracts::payment::PaymentStatus;
    use payments::domain::{CaptureRefusal, RefundRefusal, Refusal};
    use payments::service::PaymentError;
    fn payment_ordinal(error: &PaymentError) -> usize {
        match error {
            PaymentError::NotFound => 0,
            PaymentError::Forbidden(_) => 1,
            PaymentError::Refused(_) => 2,
            PaymentError::OrderAlreadyHasPayment => 3,
            PaymentError::CaptureRefused(_) => 4,
            PaymentError::NotVoidable(_) => 5,
            PaymentError::ProviderDeclined(_) => 6,
            PaymentError::ProviderUnavailable(_) => 7,
            PaymentError::RefundRefused(_) => 8,
            PaymentError::KeyInFlight => 9,
            PaymentError::KeyMismatch => 10,
            PaymentError::OrdersUnavailable(_) => 11,
            PaymentError::Unexpected(_) => 12,
        }
    }
    let money =
        contracts::money::Money::parse("1.00", contracts::money::Currency::parse("USD").unwrap())
            .unwrap();
    let errors = vec![
        PaymentError::NotFound,
        PaymentError::Forbidden("not yours".to_owned()),
        PaymentError::Refused(Refusal::OrderNotFound),
        PaymentError::Refused(Refusal::NotPayable(contracts::order::OrderStatus::Paid)),
        PaymentError::Refused(Refusal::AmountMismatch { expected: money }),
        PaymentError::OrderAlreadyHasPayment,
        PaymentError::CaptureRefused(CaptureRefusal::NotCapturable(PaymentStatus::Failed)),
        PaymentError::CaptureRefused(CaptureRefusal::ExceedsAuthorized { authorized: money }),
        PaymentError::CaptureRefused(CaptureRefusal::Zero),
        PaymentError::CaptureRefused(CaptureRefusal::InvalidAmount("x".to_owned())),
        PaymentError::NotVoidable(PaymentStatus::Succeeded),
        PaymentError::ProviderDeclined("no".to_owned()),
        PaymentError::ProviderUnavailable("down".to_owned()),
        PaymentError::RefundRefused(RefundRefusal::NotRefundable(PaymentStatus::Failed)),
        PaymentError::RefundRefused(RefundRefusal::ExceedsCaptured { refundable: money }),
        PaymentError::RefundRefused(RefundRefusal::CurrencyMismatch {
            expected: money.currency(),
        }),
        PaymentError::RefundRefused(RefundRefusal::Zero),
        PaymentError::KeyInFlight,
        PaymentError::KeyMismatch,
        PaymentError::OrdersUnavailable("down".to_owned()),
    ];
    let mut kinds: std::collections::BTreeSet<usize> = errors.iter().map(payment_ordinal).collect();
    kinds.insert(12);
    assert_eq!(kinds, (0..13).collect(), "one sample of each PaymentError");
    assert_documented("payments", &payments::api::ApiDoc::openapi(), errors);
}
