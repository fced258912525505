//! The alert rules in `deploy/observability/alerts.yml`, tested as an
//! operator meets them: `promtool check rules`, then `promtool test rules`
//! (`alerts.test.yml`: each alert fires when it should and stays quiet when
//! it should not). Every metric a rule reads is one the services export, and
//! every alert has its runbook section in `docs/operations.md`.
//!
//! `promtool` is Debian's `prometheus` package (`.ci/run` installs it).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::Command;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn promtool(args: &[&str]) {
    let dir = root().join("deploy/observability");
    let output = Command::new("promtool")
        .args(args)
        .current_dir(&dir)
        .output()
        .expect("promtool runs (apt-get install prometheus; .ci/run installs it)");
    assert!(
        output.status.success(),
        "promtool {args:?} failed:\n{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

#[test]
fn the_alert_rules_are_valid_and_fire_when_they_should() {
    promtool(&["check", "rules", "alerts.yml"]);
    promtool(&["test", "rules", "alerts.test.yml"]);
}

/// Metric names a rule reads (identifiers followed by `{` or `[` or `)`
/// inside an `expr`, less PromQL's own words).
fn metrics_read(rules: &str) -> Vec<String> {
    let mut names = Vec::new();
    let mut in_expr = false;
    for line in rules.lines() {
        let trimmed = line.trim_start();
        if trimmed.starts_with("expr:") {
            in_expr = true;
        } else if trimmed.starts_with("for:") || trimmed.starts_with("labels:") {
            in_expr = false;
        }
        if !in_expr {
            continue;
        }
        let text = trimmed.trim_start_matches("expr:");
        let mut word = String::new();
        for c in text.chars().chain(std::iter::once(' ')) {
            if c.is_ascii_alphanumeric() || c == '_' {
                word.push(c);
                continue;
            }
            if matches!(c, '{' | '[' | ')') && word.contains('_') {
                names.push(word.clone());
            }
            word.clear();
        }
    }
    names.sort();
    names.dedup();
    names
}

#[test]
fn every_rule_reads_exported_metrics_and_has_a_runbook() {
    let rules = std::fs::read_to_string(root().join("deploy/observability/alerts.yml")).unwrap();
    let source = services_source();
    let names = metrics_read(&rules);
    assert!(names.len() >= 8, "metrics found in the rules: {names:?}");
    for name in names {
        let exported = name
            .strip_suffix("_bucket")
            .unwrap_or(&name)
            .trim_end_matches("_count");
        assert!(
            source.contains(&format!("\"{exported}\"")),
            "the rules read {name}, which no service exports"
        );
    }
    let runbook = std::fs::read_to_string(root().join("docs/operations.md")).unwrap();
    let alerts: Vec<&str> = rules
        .lines()
        .filter_map(|line| line.trim().strip_prefix("- alert: "))
        .collect();
    assert_eq!(alerts.len(), 10);
    for alert in alerts {
        assert!(
            runbook.contains(&format!("\n## {alert}\n")),
            "docs/operations.md has no section `## {alert}`"
        );
        assert!(
            rules.contains(&format!("docs/operations.md#{}", alert.to_lowercase())),
            "{alert} links its runbook section"
        );
    }
}

/// The services' source, where every exported metric's name is written.
fn services_source() -> String {
    let mut source = String::new();
    for dir in [
        "crates/platform/src",
        "crates/orders/src",
        "crates/payments/src",
    ] {
        for entry in walk(&root().join(dir)) {
            source.push_str(&std::fs::read_to_string(entry).unwrap());
        }
    }
    source
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            files.extend(walk(&path));
        } else if path.extension().is_some_and(|ext| ext == "rs") {
            files.push(path);
        }
    }
    files
}

/// The Grafana dashboard (`deploy/observability/grafana/dashboards`): valid
/// JSON Grafana provisions, every panel on the provisioned Prometheus, every
/// query valid PromQL (parsed by `promtool`, as recording rules) reading
/// only metrics the services export.
#[test]
fn the_dashboard_is_valid_and_queries_exported_metrics() {
    let dir = root().join("deploy/observability/grafana/dashboards");
    let text = std::fs::read_to_string(dir.join("orders-platform.json")).unwrap();
    let dashboard: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(dashboard["uid"], "orders-platform");
    let panels = dashboard["panels"].as_array().unwrap();
    assert!(panels.len() >= 8);
    let mut rules = String::from("groups:\n  - name: dashboard\n    rules:\n");
    let source = services_source();
    let mut count = 0;
    for panel in panels {
        let title = panel["title"].as_str().unwrap();
        assert_eq!(panel["datasource"]["uid"], "prometheus", "{title}");
        for target in panel["targets"].as_array().unwrap() {
            let expr = target["expr"].as_str().unwrap();
            count += 1;
            rules.push_str(&format!(
                "      - record: dashboard:query{count}\n        expr: {}\n",
                serde_json::to_string(expr).unwrap()
            ));
            let read = metrics_read(&format!("expr: {expr}"));
            assert!(!read.is_empty(), "{title}: {expr}");
            for name in read {
                let exported = ["_bucket", "_sum", "_count"]
                    .iter()
                    .find_map(|suffix| name.strip_suffix(suffix))
                    .unwrap_or(&name);
                assert!(
                    source.contains(&format!("\"{exported}\"")),
                    "{title} reads {name}, which no service exports"
                );
            }
        }
    }
    let scratch =
        std::env::temp_dir().join(format!("dashboard-queries-{}.yml", std::process::id()));
    std::fs::write(&scratch, rules).unwrap();
    promtool(&["check", "rules", scratch.to_str().unwrap()]);
    std::fs::remove_file(scratch).ok();
}
