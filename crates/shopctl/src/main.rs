//! `shopctl`: the operators' console of both services on the command line.
//!
//! It speaks only the services' console API (`/api/v1/ops`, the scopes
//! `orders.ops` and `payments.ops`), with a token from the environment
//! (`SHOPCTL_TOKEN`). Tables for people, `--json` for scripts. Every action
//! that changes something says what it is about to do and asks first,
//! unless `--yes`; every one is idempotent on the server (a second redrive
//! or retry changes nothing), so a script may repeat it safely.

#![allow(clippy::print_stdout, clippy::print_stderr)] // a CLI: its output is its answer

mod cli;
mod output;

use anyhow::{Context, bail};
use clap::Parser;
use serde_json::{Value, json};

use cli::{Cli, Command, DeadLetters, Jobs, Outbox, Service};
use output::{cell, confirm, detail, table};

struct Console {
    http: reqwest::Client,
    orders: String,
    payments: String,
    token: String,
}

impl Console {
    fn base(&self, service: Service) -> &str {
        match service {
            Service::Orders => &self.orders,
            Service::Payments => &self.payments,
        }
    }

    async fn call(&self, request: reqwest::RequestBuilder) -> anyhow::Result<Value> {
        let response = request
            .bearer_auth(&self.token)
            .send()
            .await
            .context("the service could not be reached")?;
        let status = response.status();
        let body: Value = response.json().await.unwrap_or(Value::Null);
        if !status.is_success() {
            bail!(
                "{status}: {} — {}",
                body["type"].as_str().unwrap_or("error"),
                body["detail"]
                    .as_str()
                    .or(body["title"].as_str())
                    .unwrap_or("no detail")
            );
        }
        Ok(body)
    }

    async fn get(
        &self,
        service: Service,
        path: &str,
        query: &[(&str, String)],
    ) -> anyhow::Result<Value> {
        let url = format!(
            "{}/api/v1/ops{path}",
            self.base(service).trim_end_matches('/')
        );
        let url = reqwest::Url::parse_with_params(&url, query)
            .with_context(|| format!("{url} is not a URL"))?;
        self.call(self.http.get(url)).await
    }

    async fn post(
        &self,
        service: Service,
        path: &str,
        body: Option<Value>,
    ) -> anyhow::Result<Value> {
        let url = format!(
            "{}/api/v1/ops{path}",
            self.base(service).trim_end_matches('/')
        );
        let mut request = self.http.post(url);
        if let Some(body) = body {
            request = request.json(&body);
        }
        self.call(request).await
    }
}

/// A change to one thing: looked at first (`inspect`), described and
/// confirmed (`ask`), made (`act`), and reported (`done`).
struct Action<'a> {
    inspect: String,
    act: String,
    ask: &'a dyn Fn(&Value) -> String,
    done: &'a dyn Fn(&Value) -> String,
}

async fn act(
    console: &Console,
    service: Service,
    yes: bool,
    json_out: bool,
    action: &Action<'_>,
) -> anyhow::Result<()> {
    let current = console.get(service, &action.inspect, &[]).await?;
    confirm(yes, &(action.ask)(&current))?;
    let changed = console.post(service, &action.act, None).await?;
    if json_out {
        println!("{}", serde_json::to_string_pretty(&changed)?);
    } else {
        println!("{}", (action.done)(&changed));
    }
    Ok(())
}

const LETTER_COLUMNS: &[(&str, &str)] = &[
    ("ID", "id"),
    ("STATE", "state"),
    ("TYPE", "type"),
    ("ORDER", "subject"),
    ("TIMES", "times_dead_lettered"),
    ("REDRIVES", "redrives"),
    ("DEAD SINCE", "dead_lettered_at"),
    ("REASON", "reason"),
];

const JOB_COLUMNS: &[(&str, &str)] = &[
    ("ID", "id"),
    ("KIND", "kind"),
    ("KEY", "key"),
    ("STATE", "state"),
    ("ATTEMPTS", "attempts"),
    ("NEXT/PARKED", "run_at"),
    ("LAST ERROR", "last_error"),
];

async fn run(cli: Cli) -> anyhow::Result<()> {
    let console = Console {
        http: reqwest::Client::builder()
            .timeout(std::time::Duration::from_secs(60))
            .build()?,
        orders: cli.orders,
        payments: cli.payments,
        token: cli.token,
    };
    let (json_out, yes) = (cli.json, cli.yes);
    let show = |value: &Value, print: &dyn Fn(&Value) -> anyhow::Result<()>| {
        if json_out {
            println!("{}", serde_json::to_string_pretty(value)?);
            Ok(())
        } else {
            print(value)
        }
    };
    let list = |columns: &'static [(&'static str, &'static str)]| {
        move |value: &Value| {
            table(value.as_array().map_or(&[][..], Vec::as_slice), columns);
            Ok(())
        }
    };
    match cli.command {
        Command::DeadLetters(DeadLetters::List {
            service,
            state,
            reason,
            event_type,
            older_than,
        }) => {
            let mut query = Vec::new();
            for (name, value) in [
                ("state", state),
                ("reason", reason),
                ("type", event_type),
                ("older_than_seconds", older_than.map(|s| s.to_string())),
            ] {
                if let Some(value) = value {
                    query.push((name, value));
                }
            }
            let letters = console.get(service, "/dead-letters", &query).await?;
            show(&letters, &list(LETTER_COLUMNS))
        }
        Command::DeadLetters(DeadLetters::Show { id, service }) => {
            let letter = console
                .get(service, &format!("/dead-letters/{id}"), &[])
                .await?;
            show(&letter, &detail)
        }
        Command::DeadLetters(DeadLetters::Redrive { id, service }) => {
            let action = Action {
                inspect: format!("/dead-letters/{id}"),
                act: format!("/dead-letters/{id}/redrive"),
                ask: &|l: &Value| {
                    format!(
                        "Redrive dead letter {id} ({} for order {}, {}) to {}",
                        cell(&l["type"]),
                        cell(&l["subject"]),
                        cell(&l["reason"]),
                        cell(&l["queue"])
                    )
                },
                done: &|l: &Value| {
                    format!(
                        "dead letter {id}: {} ({} redrive(s))",
                        cell(&l["state"]),
                        cell(&l["redrives"])
                    )
                },
            };
            act(&console, service, yes, json_out, &action).await
        }
        Command::DeadLetters(DeadLetters::Discard { id, service }) => {
            let action = Action {
                inspect: format!("/dead-letters/{id}"),
                act: format!("/dead-letters/{id}/discard"),
                ask: &|l: &Value| {
                    format!(
                        "Discard dead letter {id} ({} for order {}) for good",
                        cell(&l["type"]),
                        cell(&l["subject"])
                    )
                },
                done: &|l: &Value| format!("dead letter {id}: {}", cell(&l["state"])),
            };
            act(&console, service, yes, json_out, &action).await
        }
        Command::Jobs(Jobs::List {
            service,
            state,
            kind,
        }) => {
            let mut query = Vec::new();
            for (name, value) in [("state", state), ("kind", kind)] {
                if let Some(value) = value {
                    query.push((name, value));
                }
            }
            let jobs = console.get(service, "/jobs", &query).await?;
            show(&jobs, &list(JOB_COLUMNS))
        }
        Command::Jobs(Jobs::Show { id, service }) => {
            let job = console.get(service, &format!("/jobs/{id}"), &[]).await?;
            show(&job, &detail)
        }
        Command::Jobs(Jobs::Retry { id, service }) => {
            let action = Action {
                inspect: format!("/jobs/{id}"),
                act: format!("/jobs/{id}/retry"),
                ask: &|j: &Value| {
                    format!(
                        "Retry {} job {id} ({}, {} attempt(s), last error: {})",
                        cell(&j["kind"]),
                        cell(&j["key"]),
                        cell(&j["attempts"]),
                        cell(&j["last_error"])
                    )
                },
                done: &|j: &Value| {
                    format!(
                        "job {id}: {}, due {}",
                        cell(&j["state"]),
                        cell(&j["run_at"])
                    )
                },
            };
            act(&console, service, yes, json_out, &action).await
        }
        Command::Jobs(Jobs::Discard { id, service }) => {
            let action = Action {
                inspect: format!("/jobs/{id}"),
                act: format!("/jobs/{id}/discard"),
                ask: &|j: &Value| {
                    format!(
                        "Discard {} job {id} ({}) for good",
                        cell(&j["kind"]),
                        cell(&j["key"])
                    )
                },
                done: &|_: &Value| format!("job {id}: discarded"),
            };
            act(&console, service, yes, json_out, &action).await
        }
        Command::Outbox(Outbox::Status { service }) => {
            let status = console.get(service, "/outbox", &[]).await?;
            show(&status, &|s| {
                println!(
                    "backlog {} event(s), oldest {:.1} s, last position {}",
                    cell(&s["backlog"]),
                    s["oldest_age_seconds"].as_f64().unwrap_or(0.0),
                    cell(&s["last_position"])
                );
                table(
                    s["unpublished_by_type"]
                        .as_array()
                        .map_or(&[][..], Vec::as_slice),
                    &[("TYPE", "type"), ("UNPUBLISHED", "count")],
                );
                Ok(())
            })
        }
        Command::Outbox(Outbox::Republish { from, to, service }) => {
            confirm(
                yes,
                &format!("Publish outbox positions {from}..={to} again"),
            )?;
            let marked = console
                .post(
                    service,
                    "/outbox/republish",
                    Some(json!({"from_position": from, "to_position": to})),
                )
                .await?;
            show(&marked, &|m| {
                println!(
                    "{} event(s) marked; the relay publishes them again",
                    cell(&m["marked"])
                );
                Ok(())
            })
        }
        Command::Audit { service, limit } => {
            let query: Vec<(&str, String)> = limit
                .map(|l| ("limit", l.to_string()))
                .into_iter()
                .collect();
            let entries = console.get(service, "/audit", &query).await?;
            show(
                &entries,
                &list(&[
                    ("AT", "at"),
                    ("OPERATOR", "operator"),
                    ("ACTION", "action"),
                    ("TARGET", "target"),
                ]),
            )
        }
        Command::Story { order_id } => {
            let story = console
                .get(Service::Orders, &format!("/orders/{order_id}"), &[])
                .await?;
            show(&story, &|s| {
                println!(
                    "order {} ({}): {}, payment {}, total {} {}",
                    cell(&s["order_number"]),
                    cell(&s["order_id"]),
                    cell(&s["status"]),
                    cell(&s["payment_status"]),
                    cell(&s["total"]),
                    cell(&s["currency"])
                );
                for why in s["missing"].as_array().map_or(&[][..], Vec::as_slice) {
                    println!("not shown: {}", cell(why));
                }
                table(
                    s["steps"].as_array().map_or(&[][..], Vec::as_slice),
                    &[
                        ("WHEN (UTC)", "at"),
                        ("SERVICE", "service"),
                        ("KIND", "kind"),
                        ("WHAT", "name"),
                        ("DETAIL", "summary"),
                        ("BY", "actor"),
                        ("TRACE", "trace_id"),
                    ],
                );
                Ok(())
            })
        }
        Command::Rebuild { order, apply } => {
            if apply {
                confirm(
                    yes,
                    &match order {
                        Some(id) => format!("Rewrite order {id}'s read model from its events"),
                        None => {
                            "Rewrite every differing order's read model from its events".to_owned()
                        }
                    },
                )?;
            }
            let mut after: Option<String> = None;
            let (mut checked, mut differing, mut differences) = (0, 0, Vec::new());
            loop {
                let mut body = json!({"apply": apply});
                if let Some(id) = order {
                    body["order_id"] = json!(id);
                }
                if let Some(after) = &after {
                    body["after"] = json!(after);
                }
                let report = console
                    .post(Service::Orders, "/projections/rebuild", Some(body))
                    .await?;
                checked += report["checked"].as_u64().unwrap_or(0);
                differing += report["differing"].as_u64().unwrap_or(0);
                differences.extend(
                    report["differences"]
                        .as_array()
                        .cloned()
                        .unwrap_or_default(),
                );
                match report["next_after"].as_str() {
                    Some(next) => after = Some(next.to_owned()),
                    None => break,
                }
            }
            let report = json!({
                "checked": checked,
                "differing": differing,
                "applied": apply,
                "differences": differences,
            });
            show(&report, &|r| {
                println!(
                    "{} order(s) checked, {} differing{}",
                    cell(&r["checked"]),
                    cell(&r["differing"]),
                    if apply {
                        ", rewritten"
                    } else {
                        " (nothing changed; --apply rewrites them)"
                    }
                );
                table(
                    r["differences"].as_array().map_or(&[][..], Vec::as_slice),
                    &[
                        ("ORDER", "order_id"),
                        ("FIELD", "field"),
                        ("STORED", "current"),
                        ("FROM EVENTS", "rebuilt"),
                    ],
                );
                Ok(())
            })
        }
    }
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    match run(cli).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("shopctl: {error:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
