#!/usr/bin/env bash
# `just up`: everything a newcomer needs, from a machine with PostgreSQL installed.
source "$(dirname "$0")/lib.sh"

ensure_postgres
provision_database
say "building"
cargo build --quiet --manifest-path "$ROOT/Cargo.toml" -p orders
say "migrating schema orders"
"$(target_dir)/debug/orders" migrate
start_service orders "http://127.0.0.1:${ORDERS_HTTP__PORT:-8080}"

token="$("$(target_dir)/debug/orders" token demo_user)"
admin="$("$(target_dir)/debug/orders" token demo_admin --scopes "orders.read orders.write orders.admin")"
cat <<INFO

  orders    http://127.0.0.1:${ORDERS_HTTP__PORT:-8080}/api/v1/orders
  API docs  http://127.0.0.1:${ORDERS_HTTP__PORT:-8080}/docs/
  logs      .run/orders.log          stop with: just down

  a user token (demo_user, valid 1 h):
    export TOKEN=$token
  an admin token (orders.admin):
    export ADMIN=$admin

INFO
