//! `docs/configuration.md` is generated from the services' built-in defaults
//! (`crates/*/config/default.yaml`, the files the binaries embed): every
//! setting with its environment variable, default and comment. A stale page
//! fails this test; `just configuration` refreshes it.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::fmt::Write;

const PAGE: &str = "docs/configuration.md";

/// Maps whose keys are data (method names, currencies, coupon codes), shown
/// as one setting.
const FREE_FORM: &[&str] = &["pricing.shipping_methods", "promotions.coupons"];

struct Row {
    path: String,
    default: String,
    meaning: String,
}

fn is_key(text: &str) -> Option<(&str, &str)> {
    let (key, rest) = text.split_once(':')?;
    let plain = !key.is_empty()
        && key
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
    (plain && (rest.is_empty() || rest.starts_with(' '))).then_some((key, rest.trim()))
}

/// Every setting of a default.yaml, with the comment lines just above it.
fn settings(yaml: &str) -> Vec<Row> {
    let mut rows = Vec::new();
    let mut stack: Vec<(usize, String)> = Vec::new();
    let mut comments: Vec<String> = Vec::new();
    let mut skip_deeper_than: Option<usize> = None;
    // The optional (commented-out) setting the next comment lines continue.
    let mut continuing: Option<usize> = None;
    for line in yaml.lines() {
        let text = line.trim_start();
        let indent = line.len() - text.len();
        if text.is_empty() {
            comments.clear();
            continuing = None;
            continue;
        }
        if skip_deeper_than.is_some_and(|depth| indent > depth) {
            continue;
        }
        skip_deeper_than = None;
        while stack.last().is_some_and(|(depth, _)| *depth >= indent) {
            stack.pop();
        }
        let prefix: Vec<&str> = stack.iter().map(|(_, key)| key.as_str()).collect();
        if let Some(comment) = text.strip_prefix('#') {
            let comment = comment.trim();
            // A commented-out key is an optional setting without a default.
            if let Some((key, example)) = is_key(comment)
                && indent > 0
            {
                let mut path = prefix.clone();
                path.push(key);
                let mut meaning = comments.join(" ");
                comments.clear();
                if !meaning.is_empty() {
                    meaning.push(' ');
                }
                meaning.push_str(&format!("e.g. `{example}`"));
                rows.push(Row {
                    path: path.join("."),
                    default: "unset".to_owned(),
                    meaning,
                });
                continuing = Some(rows.len() - 1);
            } else if indent == 0 && text.starts_with("# ") && stack.is_empty() && rows.is_empty() {
                // The file's own header.
            } else if let Some(row) = continuing.and_then(|index| rows.get_mut(index)) {
                row.meaning.push(' ');
                row.meaning.push_str(comment);
            } else {
                comments.push(comment.to_owned());
            }
            continue;
        }
        continuing = None;
        let Some((key, value)) = is_key(text) else {
            continue;
        };
        let mut path = prefix.clone();
        path.push(key);
        let path = path.join(".");
        let meaning = comments.join(" ");
        comments.clear();
        let value = value.split(" #").next().unwrap_or_default().trim();
        if FREE_FORM.contains(&path.as_str()) {
            rows.push(Row {
                path,
                default: "see default.yaml".to_owned(),
                meaning,
            });
            skip_deeper_than = Some(indent);
            continue;
        }
        if value.is_empty() {
            if !meaning.is_empty() {
                rows.push(Row {
                    path: path.clone(),
                    default: String::new(),
                    meaning,
                });
            }
            stack.push((indent, key.to_owned()));
        } else {
            rows.push(Row {
                path,
                default: value.to_owned(),
                meaning,
            });
        }
    }
    rows
}

fn environment_variable(prefix: &str, path: &str) -> String {
    format!(
        "{prefix}{}",
        path.split('.')
            .map(str::to_ascii_uppercase)
            .collect::<Vec<_>>()
            .join("__")
    )
}

fn page() -> String {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let mut page = String::from(
        "# Configuration reference\n\n\
         <!-- Generated from crates/*/config/default.yaml by crates/orders/tests/configuration.rs:\n     \
         do not edit by hand; `just configuration` refreshes it, and a stale page fails `just test`. -->\n\n\
         Each service reads its built-in defaults (the files below, embedded in the binary), then a\n\
         YAML file given with `--config FILE` (or `ORDERS_CONFIG` / `PAYMENTS_CONFIG`), then\n\
         environment variables: a setting `a.b.c` is `<PREFIX>A__B__C`. Maps whose keys are data\n\
         (shipping methods, coupons) are set in a file. Secrets (`database.url`, `amqp.url`,\n\
         `auth.hs256_secret`, service tokens) are never logged.\n",
    );
    for (service, prefix) in [("orders", "ORDERS_"), ("payments", "PAYMENTS_")] {
        let yaml =
            std::fs::read_to_string(root.join(format!("crates/{service}/config/default.yaml")))
                .unwrap();
        write!(
            page,
            "\n## {service}\n\nDefaults: [`crates/{service}/config/default.yaml`](../crates/{service}/config/default.yaml).\n\n\
             | Setting | Environment variable | Default | Meaning |\n|---|---|---|---|\n"
        )
        .unwrap();
        for row in settings(&yaml) {
            let escape = |text: &str| text.replace('|', "\\|");
            let default = if row.default.is_empty() {
                String::new()
            } else {
                format!("`{}`", escape(&row.default))
            };
            writeln!(
                page,
                "| `{}` | `{}` | {} | {} |",
                row.path,
                environment_variable(prefix, &row.path),
                default,
                escape(&row.meaning)
            )
            .unwrap();
        }
    }
    page
}

#[test]
fn the_configuration_reference_matches_the_defaults() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let generated = page();
    let path = root.join(PAGE);
    if std::env::var_os("UPDATE_DOCS").is_some() {
        std::fs::write(&path, &generated).unwrap();
    }
    let checked_in = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        checked_in == generated,
        "{PAGE} is stale; run `just configuration`"
    );
}

#[test]
fn every_setting_of_the_defaults_is_listed() {
    // The page lists what the binaries load: each leaf the defaults hold
    // appears, so no setting can be added without its line.
    for (service, prefix) in [("orders", "ORDERS_"), ("payments", "PAYMENTS_")] {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
        let yaml =
            std::fs::read_to_string(root.join(format!("crates/{service}/config/default.yaml")))
                .unwrap();
        let value: serde_yaml::Value = serde_yaml::from_str(&yaml).unwrap();
        let listed: Vec<String> = settings(&yaml).into_iter().map(|row| row.path).collect();
        let mut leaves = Vec::new();
        collect_leaves(&value, String::new(), &mut leaves);
        for leaf in leaves {
            assert!(
                listed.iter().any(|path| *path == leaf
                    || FREE_FORM
                        .iter()
                        .any(|map| leaf.starts_with(&format!("{map}.")))),
                "{prefix}: {leaf} is missing from the reference"
            );
        }
    }
}

fn collect_leaves(value: &serde_yaml::Value, path: String, leaves: &mut Vec<String>) {
    match value {
        serde_yaml::Value::Mapping(map) if !FREE_FORM.contains(&path.as_str()) => {
            for (key, child) in map {
                let key = key.as_str().unwrap_or_default();
                let child_path = if path.is_empty() {
                    key.to_owned()
                } else {
                    format!("{path}.{key}")
                };
                collect_leaves(child, child_path, leaves);
            }
        }
        _ => leaves.push(path),
    }
}
