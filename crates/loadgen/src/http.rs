//! HTTP load over connections of our own: each worker holds one keep-alive
//! HTTP/1.1 connection (hyper, no pool, no redirects, no decompression) and
//! sends the same request again as soon as the answer is read (closed
//! loop), or when the shared clock lets it (open loop at `--rate`).

use std::{
    net::SocketAddr,
    sync::Arc,
    time::{Duration, Instant},
};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::{
    Method, Request, StatusCode,
    client::conn::http1::{self, SendRequest},
    header,
};
use hyper_util::rt::TokioIo;
use serde_json::json;
use tokio::{net::TcpStream, sync::Mutex};

use crate::{Output, stats};

#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    /// What to call this measurement (`create`, `get`, `list`).
    #[arg(long)]
    pub name: String,
    #[arg(long, default_value = "GET")]
    pub method: String,
    /// The full URL, e.g. `http://127.0.0.1:18080/api/v1/orders`.
    #[arg(long)]
    pub url: String,
    /// A file holding the JSON body.
    #[arg(long)]
    pub body: Option<std::path::PathBuf>,
    /// The bearer token.
    #[arg(long, env = "TOKEN")]
    pub token: String,
    /// Connections (and workers).
    #[arg(long, default_value_t = 8)]
    pub concurrency: usize,
    /// Seconds measured.
    #[arg(long, default_value_t = 10.0)]
    pub duration: f64,
    /// Seconds of load before measuring.
    #[arg(long, default_value_t = 2.0)]
    pub warmup: f64,
    /// Requests per second in all (open loop); unset: as fast as answered.
    #[arg(long)]
    pub rate: Option<f64>,
    /// The status a success answers.
    #[arg(long, default_value_t = 200)]
    pub expect: u16,
    #[command(flatten)]
    pub output: Output,
}

/// A parsed target: where to connect and what to ask.
#[derive(Debug, Clone)]
pub struct Target {
    pub addr: SocketAddr,
    pub host: String,
    pub path: String,
}

impl Target {
    pub fn parse(url: &str) -> anyhow::Result<Target> {
        let uri: hyper::Uri = url.parse()?;
        let host = uri
            .host()
            .ok_or_else(|| anyhow::anyhow!("{url} has no host"))?;
        let port = uri.port_u16().unwrap_or(80);
        let addr = std::net::ToSocketAddrs::to_socket_addrs(&(host, port))?
            .next()
            .ok_or_else(|| anyhow::anyhow!("{host} does not resolve"))?;
        let path = uri
            .path_and_query()
            .map_or_else(|| "/".to_owned(), ToString::to_string);
        Ok(Target {
            addr,
            host: format!("{host}:{port}"),
            path,
        })
    }
}

/// One keep-alive connection.
pub struct Connection {
    sender: SendRequest<Full<Bytes>>,
}

impl Connection {
    pub async fn open(target: &Target) -> anyhow::Result<Connection> {
        let stream = TcpStream::connect(target.addr).await?;
        stream.set_nodelay(true)?;
        let (sender, connection) = http1::handshake(TokioIo::new(stream)).await?;
        tokio::spawn(connection);
        Ok(Connection { sender })
    }

    /// Sends one request and reads the whole answer.
    pub async fn send(
        &mut self,
        request: Request<Full<Bytes>>,
    ) -> anyhow::Result<(StatusCode, Bytes)> {
        self.sender.ready().await?;
        let response = self.sender.send_request(request).await?;
        let status = response.status();
        let body = response.into_body().collect().await?.to_bytes();
        Ok((status, body))
    }
}

/// The request every worker sends.
#[derive(Debug, Clone)]
pub struct Template {
    pub method: Method,
    pub target: Target,
    pub bearer: String,
    pub body: Bytes,
}

impl Template {
    pub fn request(&self) -> anyhow::Result<Request<Full<Bytes>>> {
        let mut builder = Request::builder()
            .method(self.method.clone())
            .uri(self.target.path.as_str())
            .header(header::HOST, self.target.host.as_str())
            .header(header::AUTHORIZATION, self.bearer.as_str());
        if !self.body.is_empty() {
            builder = builder.header(header::CONTENT_TYPE, "application/json");
        }
        Ok(builder.body(Full::new(self.body.clone()))?)
    }
}

/// Hands out send times to the workers of an open loop.
pub struct Pacer {
    next: Mutex<Instant>,
    every: Duration,
}

impl Pacer {
    pub fn new(rate: f64) -> Arc<Pacer> {
        Arc::new(Pacer {
            next: Mutex::new(Instant::now()),
            every: Duration::from_secs_f64(1.0 / rate.max(0.001)),
        })
    }

    /// Waits for this worker's turn.
    pub async fn turn(&self) {
        let at = {
            let mut next = self.next.lock().await;
            let at = (*next).max(Instant::now() - self.every * 4);
            *next = at + self.every;
            at
        };
        tokio::time::sleep_until(at.into()).await;
    }
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    let template = Arc::new(Template {
        method: args.method.parse()?,
        target: Target::parse(&args.url)?,
        bearer: format!("Bearer {}", args.token),
        body: match &args.body {
            Some(path) => Bytes::from(std::fs::read(path)?),
            None => Bytes::new(),
        },
    });
    let pacer = args.rate.map(Pacer::new);
    let start = Instant::now();
    let measure_from = start + Duration::from_secs_f64(args.warmup);
    let until = measure_from + Duration::from_secs_f64(args.duration);
    let workers: Vec<_> = (0..args.concurrency.max(1))
        .map(|_| {
            let (template, pacer) = (template.clone(), pacer.clone());
            let expect = args.expect;
            tokio::spawn(async move { worker(&template, pacer, measure_from, until, expect).await })
        })
        .collect();
    let mut histogram = stats::histogram()?;
    let mut errors = 0;
    let mut first_error = None;
    for worker in workers {
        let outcome = worker.await??;
        histogram.add(&outcome.latencies)?;
        errors += outcome.errors;
        first_error = first_error.or(outcome.first_error);
    }
    let summary = stats::with(
        stats::summary(&histogram, args.duration, errors),
        json!({
            "kind": "service",
            "name": args.name,
            "concurrency": args.concurrency,
            "rate": args.rate,
        }),
    );
    println!("{summary}");
    if let Some(error) = first_error {
        eprintln!("first error: {error}");
    }
    args.output.append(&summary)
}

struct Outcome {
    latencies: hdrhistogram::Histogram<u64>,
    errors: u64,
    first_error: Option<String>,
}

async fn worker(
    template: &Template,
    pacer: Option<Arc<Pacer>>,
    measure_from: Instant,
    until: Instant,
    expect: u16,
) -> anyhow::Result<Outcome> {
    let mut latencies = stats::histogram()?;
    let mut errors = 0;
    let mut first_error = None;
    let mut connection = Connection::open(&template.target).await?;
    while Instant::now() < until {
        if let Some(pacer) = &pacer {
            pacer.turn().await;
        }
        let sent = Instant::now();
        let outcome = connection.send(template.request()?).await;
        let took = sent.elapsed();
        let counted = sent >= measure_from && sent < until;
        match outcome {
            Ok((status, _)) if status.as_u16() == expect => {
                if counted {
                    stats::record(&mut latencies, took);
                }
            }
            Ok((status, body)) => {
                errors += u64::from(counted);
                first_error
                    .get_or_insert_with(|| format!("{status}: {}", String::from_utf8_lossy(&body)));
            }
            Err(error) => {
                errors += u64::from(counted);
                first_error.get_or_insert_with(|| error.to_string());
                connection = Connection::open(&template.target).await?;
            }
        }
    }
    Ok(Outcome {
        latencies,
        errors,
        first_error,
    })
}
