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
