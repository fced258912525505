#!/usr/bin/env bash
# `just up`: everything a newcomer needs, from a machine with PostgreSQL installed.
source "$(dirname "$0")/lib.sh"

# The development doubles of the User Service and the Catalog, unless real
# ones are configured.
export ORDERS_USER_SERVICE__URL="${ORDERS_USER_SERVICE__URL:-http://127.0.0.1:${STUBS_PORT:-8090}}"
export ORDERS_CATALOG__URL="${ORDERS_CATALOG__URL:-http://127.0.0.1:${STUBS_PORT:-8090}}"
# The development configuration: the coupons the source documents use.
export ORDERS_CONFIG="${ORDERS_CONFIG:-$(cd "$(dirname "$0")" && pwd)/orders.yaml}"
# Each service on the broker as its own least-privileged user (vhost `shop`,
# deploy/rabbitmq/definitions.json), as in compose.
export ORDERS_AMQP__URL="${ORDERS_AMQP__URL:-amqp://orders:orders@127.0.0.1:5672/shop}"
export PAYMENTS_AMQP__URL="${PAYMENTS_AMQP__URL:-amqp://payments:payments@127.0.0.1:5672/shop}"
# Payments checks every charge against the order at orders.
export PAYMENTS_ORDERS__URL="${PAYMENTS_ORDERS__URL:-http://127.0.0.1:${ORDERS_HTTP__PORT:-8080}}"

check_prerequisites
ensure_postgres
ensure_rabbitmq
provision_broker
provision_database
say "building (the first build compiles the dependencies: a few minutes)"
cargo build --manifest-path "$ROOT/Cargo.toml" -p orders -p payments -p shopctl
say "migrating schemas orders and payments"
"$(target_dir)/debug/orders" migrate
"$(target_dir)/debug/payments" migrate
start_stubs
start_service payments "http://127.0.0.1:${PAYMENTS_HTTP__PORT:-8081}"
start_service orders "http://127.0.0.1:${ORDERS_HTTP__PORT:-8080}"

token="$("$(target_dir)/debug/orders" token demo_user)"
admin="$("$(target_dir)/debug/orders" token demo_admin --scopes "orders.read orders.write orders.admin")"
cat <<INFO

  orders    http://127.0.0.1:${ORDERS_HTTP__PORT:-8080}/api/v1/orders     docs: /docs/
  payments  http://127.0.0.1:${PAYMENTS_HTTP__PORT:-8081}/api/v1/payments   docs: /docs/
  doubles   User Service and Catalog on http://127.0.0.1:${STUBS_PORT:-8090} (deploy/local/stubs.py)
  logs      .run/orders.log, .run/payments.log        stop with: just down
  try it    just demo

  a user token (demo_user, valid 1 h, for both services):
    export TOKEN=$token
  an admin token (orders.admin):
    export ADMIN=$admin

INFO
