//! The report: each measurement beside its baseline from the same run, the
//! ratios against the targets, dated rows for `BENCHMARKS.md`, and a chart
//! of latency against throughput.

use std::{fmt::Write as _, path::PathBuf};

use plotters::prelude::*;
use serde::Deserialize;

#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    /// The results file (JSON lines).
    #[arg(long)]
    pub results: PathBuf,
    /// Where to write the report (markdown).
    #[arg(long)]
    pub out: PathBuf,
    /// Where to draw the chart (SVG).
    #[arg(long)]
    pub svg: PathBuf,
    /// How the chart is linked from the report.
    #[arg(long, default_value = "docs/bench/latency-throughput.svg")]
    pub svg_link: String,
    /// A title line: date, commit, mode.
    #[arg(long, default_value = "")]
    pub title: String,
}

#[derive(Debug, Clone, Deserialize)]
struct Record {
    kind: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    concurrency: Option<u64>,
    #[serde(default)]
    rate: Option<f64>,
    #[serde(default)]
    throughput: f64,
    #[serde(default)]
    p50_ms: Option<f64>,
    #[serde(default)]
    p99_ms: Option<f64>,
    #[serde(default)]
    errors: Option<u64>,
    #[serde(default)]
    not_paid: Option<u64>,
    #[serde(default)]
    service: Option<String>,
    #[serde(default)]
    peak_rss_kib: Option<u64>,
    #[serde(default)]
    rss_kib: Option<u64>,
    #[serde(default)]
    idle_cpu_percent: Option<f64>,
    #[serde(default)]
    stored: Option<u64>,
}

struct Results(Vec<Record>);

impl Results {
    fn baseline(&self, name: &str) -> Option<f64> {
        self.0
            .iter()
            .filter(|r| r.kind == "baseline" && r.name == name)
            .map(|r| r.throughput)
            .reduce(f64::max)
    }

    /// The closed-loop runs of a service measurement (no rate, no scale).
    fn closed(&self, name: &str) -> Vec<&Record> {
        let mut runs: Vec<&Record> = self
            .0
            .iter()
            .filter(|r| r.kind == "service" && r.name == name && r.rate.is_none())
            .collect();
        runs.sort_by_key(|r| r.concurrency.unwrap_or_default());
        runs
    }

    fn best(&self, name: &str) -> Option<&Record> {
        self.closed(name)
            .into_iter()
            .max_by(|a, b| a.throughput.total_cmp(&b.throughput))
    }

    /// The open-loop run (at half of saturation).
    fn paced(&self, name: &str) -> Option<&Record> {
        self.0
            .iter()
            .find(|r| r.kind == "service" && r.name == name && r.rate.is_some())
    }

    fn scaled(&self, name: &str, stored: u64) -> Option<&Record> {
        self.0
            .iter()
            .find(|r| r.kind == "scale" && r.name == name && r.stored == Some(stored))
    }
}

fn pct(value: f64, of: f64) -> String {
    if of > 0.0 {
        format!("{:.0}%", value / of * 100.0)
    } else {
        "n/a".to_owned()
    }
}

fn verdict(met: Option<bool>) -> &'static str {
    match met {
        Some(true) => "met",
        Some(false) => "**not met**",
        None => "not measured",
    }
}

fn ms(value: Option<f64>) -> String {
    value.map_or_else(|| "–".to_owned(), |v| format!("{v:.1} ms"))
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let text = std::fs::read_to_string(&args.results)?;
    let results = Results(
        text.lines()
            .filter(|line| !line.trim().is_empty())
            .map(serde_json::from_str)
            .collect::<Result<_, _>>()?,
    );
    let mut out = String::new();
    writeln!(out, "## {}\n", args.title)?;
    write_targets(&mut out, &results)?;
    write_runs(&mut out, &results)?;
    write_resources(&mut out, &results)?;
    writeln!(out, "![latency against throughput]({})\n", args.svg_link)?;
    std::fs::write(&args.out, &out)?;
    println!("{out}");
    chart(&results, &args.svg)
}

fn write_targets(out: &mut String, results: &Results) -> anyhow::Result<()> {
    let create_base = results
        .baseline("pgbench-create-minimal")
        .unwrap_or_default();
    let select_base = results.baseline("pgbench-select").unwrap_or_default();
    writeln!(out, "| target | measured | baseline (same run) | ratio | |")?;
    writeln!(out, "|---|---|---|---|---|")?;
    if let Some(create) = results.best("create") {
        writeln!(
            out,
            "| create ≥ 70% of pgbench's minimal create transaction | {:.0}/s (c={}) | {:.0} tx/s | {} | {} |",
            create.throughput,
            create.concurrency.unwrap_or_default(),
            create_base,
            pct(create.throughput, create_base),
            verdict((create_base > 0.0).then_some(create.throughput >= create_base * 0.7)),
        )?;
    }
    if let Some(exact) = results.baseline("pgbench-create-exact") {
        writeln!(
            out,
            "| (pgbench with the service's own statements of one creation) | | {exact:.0} tx/s | {} | |",
            results
                .best("create")
                .map_or_else(|| "n/a".to_owned(), |c| pct(c.throughput, exact)),
        )?;
    }
    if let Some(paced) = results.paced("create") {
        writeln!(
            out,
            "| create p99 < 20 ms at half saturation ({:.0}/s) | {} | | | {} |",
            paced.rate.unwrap_or_default(),
            ms(paced.p99_ms),
            verdict(paced.p99_ms.map(|p| p < 20.0)),
        )?;
    }
    if let Some(get) = results.best("get") {
        writeln!(
            out,
            "| get ≥ 70% of pgbench -S | {:.0}/s (c={}) | {:.0} tx/s | {} | {} |",
            get.throughput,
            get.concurrency.unwrap_or_default(),
            select_base,
            pct(get.throughput, select_base),
            verdict((select_base > 0.0).then_some(get.throughput >= select_base * 0.7)),
        )?;
    }
    if let (Some(list), Some(page_base)) =
        (results.best("list"), results.baseline("pgbench-list-page"))
    {
        writeln!(
            out,
            "| list ≥ 50% of pgbench running the same page query | {:.0}/s (c={}) | {:.0} tx/s | {} | {} |",
            list.throughput,
            list.concurrency.unwrap_or_default(),
            page_base,
            pct(list.throughput, page_base),
            verdict((page_base > 0.0).then_some(list.throughput >= page_base / 2.0)),
        )?;
    }
    let paid_base = results.baseline("pgbench-paid-order").unwrap_or_default();
    if let Some(pay) = results.best("payflow") {
        writeln!(
            out,
            "| pay flow ≥ 50% of pgbench's least paid order (3 transactions, each with its event) | {:.0} paid/s (c={}) | {:.0} tx/s | {} | {} |",
            pay.throughput,
            pay.concurrency.unwrap_or_default(),
            paid_base,
            pct(pay.throughput, paid_base),
            verdict((paid_base > 0.0).then_some(pay.throughput >= paid_base * 0.5)),
        )?;
    }
    if let Some(paced) = results.paced("payflow") {
        writeln!(
            out,
            "| created→paid p99 < 100 ms at half saturation ({:.0}/s) | {} | | | {} |",
            paced.rate.unwrap_or_default(),
            ms(paced.p99_ms),
            verdict(paced.p99_ms.map(|p| p < 100.0)),
        )?;
    }
    for service in ["orders", "payments"] {
        if let Some(resource) = results
            .0
            .iter()
            .find(|r| r.kind == "resource" && r.service.as_deref() == Some(service))
        {
            let peak = resource.peak_rss_kib.unwrap_or_default() as f64 / 1024.0;
            writeln!(
                out,
                "| {service} < 64 MiB RSS at peak | {peak:.1} MiB | | | {} |",
                verdict(Some(peak < 64.0)),
            )?;
            if let Some(idle) = resource.idle_cpu_percent {
                writeln!(
                    out,
                    "| {service} idle CPU < 1% | {idle:.2}% | | | {} |",
                    verdict(Some(idle < 1.0)),
                )?;
            }
        }
    }
    if let (Some(small), Some(large)) = (
        results.scaled("create", 10_000),
        results.scaled("create", 1_000_000),
    ) && let (Some(a), Some(b)) = (small.p99_ms, large.p99_ms)
    {
        writeln!(
            out,
            "| create p99 at 1M orders ≤ 1.5× at 10k | {b:.1} ms vs {a:.1} ms | | {:.2}× | {} |",
            b / a,
            verdict(Some(b <= a * 1.5)),
        )?;
    }
    if let Some(broker) = results.baseline("rabbitmq-confirmed-publish") {
        writeln!(
            out,
            "| (RabbitMQ confirmed publishes, quorum queue) | | {broker:.0} msg/s | | |"
        )?;
    }
    writeln!(out)?;
    Ok(())
}

fn write_runs(out: &mut String, results: &Results) -> anyhow::Result<()> {
    writeln!(
        out,
        "| run | concurrency | offered | throughput | p50 | p99 | errors |"
    )?;
    writeln!(out, "|---|---|---|---|---|---|---|")?;
    for record in results.0.iter().filter(|r| r.kind != "resource") {
        writeln!(
            out,
            "| {}{} | {} | {} | {:.0}/s | {} | {} | {} |",
            record.name,
            record
                .stored
                .map_or_else(String::new, |n| format!(" ({n} stored)")),
            record
                .concurrency
                .map_or_else(|| "–".to_owned(), |c| c.to_string()),
            record
                .rate
                .map_or_else(|| "closed loop".to_owned(), |r| format!("{r:.0}/s")),
            record.throughput,
            ms(record.p50_ms),
            ms(record.p99_ms),
            record
                .not_paid
                .or(record.errors)
                .map_or_else(|| "–".to_owned(), |e| e.to_string()),
        )?;
    }
    writeln!(out)?;
    Ok(())
}

fn write_resources(out: &mut String, results: &Results) -> anyhow::Result<()> {
    for resource in results.0.iter().filter(|r| r.kind == "resource") {
        writeln!(
            out,
            "- {}: peak RSS {:.1} MiB, RSS after the run {:.1} MiB, idle CPU {}",
            resource.service.as_deref().unwrap_or("?"),
            resource.peak_rss_kib.unwrap_or_default() as f64 / 1024.0,
            resource.rss_kib.unwrap_or_default() as f64 / 1024.0,
            resource
                .idle_cpu_percent
                .map_or_else(|| "–".to_owned(), |c| format!("{c:.2}%")),
        )?;
    }
    writeln!(out)?;
    Ok(())
}

/// p99 latency against throughput for each endpoint over its
/// concurrencies, beside the database's baselines (vertical lines).
fn chart(results: &Results, path: &PathBuf) -> anyhow::Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let series: Vec<(&str, Vec<(f64, f64)>)> = ["create", "get", "list", "payflow"]
        .into_iter()
        .map(|name| {
            let points = results
                .closed(name)
                .into_iter()
                .filter_map(|r| Some((r.throughput, r.p99_ms?)))
                .collect();
            (name, points)
        })
        .collect();
    let baselines: Vec<(&str, f64)> = [
        ("pgbench create", results.baseline("pgbench-create-minimal")),
        ("pgbench -S", results.baseline("pgbench-select")),
        ("pgbench paid order", results.baseline("pgbench-paid-order")),
        ("pgbench list page", results.baseline("pgbench-list-page")),
    ]
    .into_iter()
    .filter_map(|(name, value)| Some((name, value?)))
    .collect();
    let max_x = series
        .iter()
        .flat_map(|(_, points)| points.iter().map(|p| p.0))
        .chain(baselines.iter().map(|b| b.1))
        .fold(100.0_f64, f64::max)
        * 1.1;
    let max_y = series
        .iter()
        .flat_map(|(_, points)| points.iter().map(|p| p.1))
        .fold(10.0_f64, f64::max)
        * 1.1;
    let root = SVGBackend::new(path, (900, 560)).into_drawing_area();
    root.fill(&WHITE)?;
    let mut chart = ChartBuilder::on(&root)
        .caption("p99 latency against throughput", ("sans-serif", 22))
        .margin(16)
        .x_label_area_size(44)
        .y_label_area_size(56)
        .build_cartesian_2d(0.0..max_x, 0.0..max_y)?;
    chart
        .configure_mesh()
        .x_desc("requests (or paid orders) per second")
        .y_desc("p99 latency, ms")
        .draw()?;
    let colors = [BLUE, GREEN, MAGENTA, RED];
    for ((name, points), color) in series.into_iter().zip(colors) {
        if points.is_empty() {
            continue;
        }
        chart
            .draw_series(LineSeries::new(points.clone(), color.stroke_width(2)))?
            .label(name)
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], color));
        chart.draw_series(
            points
                .into_iter()
                .map(|p| Circle::new(p, 4, color.filled())),
        )?;
    }
    for ((name, x), color) in baselines.into_iter().zip([BLACK, CYAN]) {
        chart
            .draw_series(LineSeries::new(
                vec![(x, 0.0), (x, max_y)],
                color.stroke_width(1),
            ))?
            .label(name)
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], color));
    }
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .draw()?;
    root.present()?;
    Ok(())
}
