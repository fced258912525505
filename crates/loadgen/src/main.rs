//! `loadgen`: the benchmark's load generator (`just bench`).
//!
//! - `http`: one endpoint at a fixed concurrency (closed loop) or a fixed
//!   rate (open loop), over keep-alive HTTP/1.1 connections of its own;
//! - `payflow`: orders placed with a card, each counted as done when its
//!   `order.paid` reaches a subscriber of the orders exchange;
//! - `publish`: RabbitMQ's confirmed publish rate, the broker's baseline;
//! - `report`: the ratio table, the dated `BENCHMARKS.md` rows and the chart.
//!
//! Every measuring subcommand appends one JSON line to `--results`.
#![allow(clippy::print_stdout)] // a CLI: its output is the report

mod http;
mod payflow;
mod publish;
mod report;
mod stats;

use std::path::PathBuf;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(about = "The benchmark's load generator")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Load one endpoint.
    Http(http::Args),
    /// The full pay flow, counted at a subscriber.
    Payflow(payflow::Args),
    /// RabbitMQ's confirmed publish rate.
    Publish(publish::Args),
    /// The ratio table, BENCHMARKS.md rows and the SVG chart.
    Report(report::Args),
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    match Cli::parse().command {
        Command::Http(args) => http::run(args).await,
        Command::Payflow(args) => payflow::run(args).await,
        Command::Publish(args) => publish::run(args).await,
        Command::Report(args) => report::run(args),
    }
}

/// Where every measurement goes: one JSON object per line.
#[derive(Debug, Clone, clap::Args)]
pub struct Output {
    /// The results file (JSON lines), appended to.
    #[arg(long)]
    results: PathBuf,
}

impl Output {
    pub fn append(&self, record: &serde_json::Value) -> anyhow::Result<()> {
        use std::io::Write;
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.results)?;
        writeln!(file, "{record}")?;
        Ok(())
    }
}
