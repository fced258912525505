//! What `shopctl` understands: its options and commands.

use clap::{Parser, Subcommand, ValueEnum};

#[derive(Parser)]
#[command(
    name = "shopctl",
    version,
    about = "The operators' console of the orders platform"
)]
pub struct Cli {
    /// Orders' base URL.
    #[arg(long, env = "ORDERS_URL", default_value = "http://127.0.0.1:8080")]
    pub orders: String,
    /// Payments' base URL.
    #[arg(long, env = "PAYMENTS_URL", default_value = "http://127.0.0.1:8081")]
    pub payments: String,
    /// A bearer token with `orders.ops` and/or `payments.ops` (for an
    /// order's whole story, both, with both audiences).
    #[arg(long, env = "SHOPCTL_TOKEN", hide_env_values = true)]
    pub token: String,
    /// Print the services' JSON answers instead of tables.
    #[arg(long, global = true)]
    pub json: bool,
    /// Do not ask before changing anything.
    #[arg(long, short = 'y', global = true)]
    pub yes: bool,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Clone, Copy, ValueEnum)]
pub enum Service {
    Orders,
    Payments,
}

#[derive(Subcommand)]
pub enum Command {
    /// Messages a consumer gave up on.
    #[command(subcommand)]
    DeadLetters(DeadLetters),
    /// Pending and parked jobs.
    #[command(subcommand)]
    Jobs(Jobs),
    /// The outbox: backlog, and re-publishing a range.
    #[command(subcommand)]
    Outbox(Outbox),
    /// What operators did, newest first.
    Audit {
        #[arg(long, value_enum, default_value = "orders")]
        service: Service,
        #[arg(long)]
        limit: Option<u32>,
    },
    /// An order's whole story across both services, in time order.
    Story { order_id: uuid::Uuid },
    /// Rebuild orders' read model from its events: report every difference
    /// (every order, page by page), and rewrite the differing rows with
    /// `--apply`.
    Rebuild {
        /// One order only.
        #[arg(long)]
        order: Option<uuid::Uuid>,
        #[arg(long)]
        apply: bool,
    },
}

#[derive(Subcommand)]
pub enum DeadLetters {
    /// List them (dead ones by default).
    List {
        #[arg(long, value_enum, default_value = "orders")]
        service: Service,
        /// dead, redriven, discarded or all.
        #[arg(long)]
        state: Option<String>,
        /// Only those whose reason contains this text.
        #[arg(long)]
        reason: Option<String>,
        /// Only this event type.
        #[arg(long = "type")]
        event_type: Option<String>,
        /// Only those dead-lettered at least this many seconds ago.
        #[arg(long)]
        older_than: Option<u64>,
    },
    /// One, with its headers and its body (personal and card data masked).
    Show {
        id: i64,
        #[arg(long, value_enum, default_value = "orders")]
        service: Service,
    },
    /// Republish one to the queue it came from (once).
    Redrive {
        id: i64,
        #[arg(long, value_enum, default_value = "orders")]
        service: Service,
    },
    /// Give one up for good.
    Discard {
        id: i64,
        #[arg(long, value_enum, default_value = "orders")]
        service: Service,
    },
}

#[derive(Subcommand)]
pub enum Jobs {
    /// List them (parked ones by default).
    List {
        #[arg(long, value_enum, default_value = "orders")]
        service: Service,
        /// parked, pending or all.
        #[arg(long)]
        state: Option<String>,
        #[arg(long)]
        kind: Option<String>,
    },
    /// One, with its attempts, last error and payload (masked).
    Show {
        id: i64,
        #[arg(long, value_enum, default_value = "orders")]
        service: Service,
    },
    /// Run a parked job again, at once.
    Retry {
        id: i64,
        #[arg(long, value_enum, default_value = "orders")]
        service: Service,
    },
    /// Give a parked job up for good.
    Discard {
        id: i64,
        #[arg(long, value_enum, default_value = "orders")]
        service: Service,
    },
}

#[derive(Subcommand)]
pub enum Outbox {
    /// Backlog, oldest age, counts per type.
    Status {
        #[arg(long, value_enum, default_value = "orders")]
        service: Service,
    },
    /// Publish positions FROM..=TO again (consumers deduplicate by id).
    Republish {
        from: i64,
        to: i64,
        #[arg(long, value_enum, default_value = "orders")]
        service: Service,
    },
}
