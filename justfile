# Developer and operator entry points. `just` lists them.

set shell := ["bash", "-euo", "pipefail", "-c"]

# Local development defaults; override any of them in the environment.
export ORDERS_DATABASE__URL := env_var_or_default("ORDERS_DATABASE__URL", "postgres://orders@127.0.0.1:5432/shop")
export ORDERS_AUTH__HS256_SECRET := env_var_or_default("ORDERS_AUTH__HS256_SECRET", "local-development-secret-do-not-use-in-production")
export ORDERS_LOG__FORMAT := env_var_or_default("ORDERS_LOG__FORMAT", "pretty")
export PAYMENTS_DATABASE__URL := env_var_or_default("PAYMENTS_DATABASE__URL", "postgres://payments@127.0.0.1:5432/shop")
export PAYMENTS_AUTH__HS256_SECRET := env_var_or_default("PAYMENTS_AUTH__HS256_SECRET", "local-development-secret-do-not-use-in-production")
export PAYMENTS_LOG__FORMAT := env_var_or_default("PAYMENTS_LOG__FORMAT", "pretty")

default:
    @just --list

# Start PostgreSQL and RabbitMQ if stopped, provision, migrate, run both services in the background, print URLs and tokens.
up:
    deploy/local/up.sh

# Stop the services started by `just up`.
down:
    deploy/local/down.sh

# Run every test (unit, property, integration, end to end) against the local PostgreSQL and RabbitMQ.
test: services
    cargo test --workspace --locked

# Make sure PostgreSQL and RabbitMQ are running (tests create their own databases and broker names).
services:
    #!/usr/bin/env bash
    source deploy/local/lib.sh
    ensure_postgres
    ensure_rabbitmq

# Print a development token for SUB with SCOPES (the token alone on stdout).
token SUB SCOPES="orders.read orders.write payments.read payments.write":
    @cargo run --quiet -p orders -- token "{{SUB}}" --scopes "{{SCOPES}}"

# The operators' console on the command line, e.g. `just shopctl story <order id>` (a development token with both ops scopes unless SHOPCTL_TOKEN is set).
shopctl *ARGS:
    #!/usr/bin/env bash
    set -euo pipefail
    export SHOPCTL_TOKEN="${SHOPCTL_TOKEN:-$(cargo run --quiet -p orders -- token oncall --scopes 'orders.ops payments.ops')}"
    cargo run --quiet -p shopctl -- {{ARGS}}

# Formatting and clippy, as CI checks them.
lint:
    cargo fmt --all -- --check
    cargo clippy --workspace --all-targets --locked -- -D warnings

# Walk through the whole flow with curl: paid, shipped, delivered; declined, retried, refunded; ends with an order's timeline in the console (needs `just up`).
demo:
    deploy/local/demo.sh

# Regenerate the checked-in contracts (OpenAPI, AsyncAPI, JSON Schemas) from the code.
contracts:
    UPDATE_CONTRACTS=1 cargo test -q -p orders --test contracts checked_in_contracts_match_the_code

# Regenerate docs/source-documents.md: every source document's example sent to the real service, with its answer.
source-documents: services
    UPDATE_DOCS=1 cargo test -q -p orders --test api source_documents

# Regenerate docs/configuration.md from the services' built-in defaults.
configuration:
    UPDATE_DOCS=1 cargo test -q -p orders --test configuration

# Check the contracts with the ecosystem's tools and fuzz both live services with schemathesis.
contracts-check:
    deploy/tools/contracts-check.sh

# Validate the compose file, the Kubernetes manifests and the Dockerfile with their ecosystems' validators.
deploy-check:
    deploy/tools/deploy-check.sh

# One benchmark run against this machine's own baselines (pgbench, RabbitMQ): create, get, list,
# the full pay flow, RSS and idle CPU, scaling; appends to BENCHMARKS.md. `--quick`: a smoke run.
bench *ARGS:
    deploy/bench/run.sh {{ARGS}}
