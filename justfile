# Developer and operator entry points. `just` lists them.

set shell := ["bash", "-euo", "pipefail", "-c"]

# Local development defaults; override any of them in the environment.
export ORDERS_DATABASE__URL := env_var_or_default("ORDERS_DATABASE__URL", "postgres://orders@127.0.0.1:5432/shop")
export ORDERS_AUTH__HS256_SECRET := env_var_or_default("ORDERS_AUTH__HS256_SECRET", "local-development-secret-do-not-use-in-production")
export ORDERS_LOG__FORMAT := env_var_or_default("ORDERS_LOG__FORMAT", "pretty")

default:
    @just --list

# Start PostgreSQL if stopped, provision, migrate, run the services in the background, print URLs and tokens.
up:
    deploy/local/up.sh

# Stop the services started by `just up`.
down:
    deploy/local/down.sh

# Run every test (unit, property, integration) against the local PostgreSQL.
test: services
    cargo test --workspace --locked

# Make sure PostgreSQL is running (the tests create their own databases).
services:
    #!/usr/bin/env bash
    source deploy/local/lib.sh
    ensure_postgres

# Print a development token for SUB with SCOPES (the token alone on stdout).
token SUB SCOPES="orders.read orders.write payments.read payments.write":
    @cargo run --quiet -p orders -- token "{{SUB}}" --scopes "{{SCOPES}}"

# Formatting and clippy, as CI checks them.
lint:
    cargo fmt --all -- --check
    cargo clippy --workspace --all-targets --locked -- -D warnings

# Walk through an order's life with curl (needs `just up`).
demo:
    deploy/local/demo.sh

# Validate the compose file.
compose-check:
    docker-compose -f deploy/docker-compose.yml config --quiet

# Measure order creation and reads with wrk against a release build (see BENCHMARKS.md).
bench:
    deploy/bench/run.sh
