#!/usr/bin/env bash
# `just bench`: load the orders service (release build) with wrk and report
# throughput and latency. Uses database `shop` like `just up`.
source "$(dirname "$0")/../local/lib.sh"
command -v wrk >/dev/null || die "the benchmark needs wrk (apt-get install wrk)"
DURATION="${DURATION:-20s}"
CONNECTIONS="${CONNECTIONS:-32}"
THREADS="${THREADS:-1}"
PORT=18080

ensure_postgres
provision_database
cargo build --quiet --release --manifest-path "$ROOT/Cargo.toml" -p orders
bin="$(target_dir)/release/orders"
"$bin" migrate
ORDERS_HTTP__PORT=$PORT ORDERS_LOG__LEVEL=warn ORDERS_RATE_LIMIT__ENABLED=false nohup "$bin" serve >"$RUN_DIR/bench-orders.log" 2>&1 &
pid=$!
trap 'kill $pid 2>/dev/null' EXIT
for _ in $(seq 1 60); do curl -fsS "http://127.0.0.1:$PORT/ready" >/dev/null 2>&1 && break; sleep 0.5; done

export TOKEN="$("$bin" token bench_user --ttl 7200)"
say "POST /api/v1/orders: $CONNECTIONS connections, $DURATION"
wrk -t"$THREADS" -c"$CONNECTIONS" -d"$DURATION" -s "$ROOT/deploy/bench/create_order.lua" "http://127.0.0.1:$PORT/api/v1/orders"

export ORDER_ID="$(curl -fsS -X POST "http://127.0.0.1:$PORT/api/v1/orders" -H "Authorization: Bearer $TOKEN" \
    -H 'Content-Type: application/json' -d @<(sed -n 's/^wrk.body = \[\[\(.*\)\]\]$/\1/p' "$ROOT/deploy/bench/create_order.lua") | jq -r .id)"
say "GET /api/v1/orders/{id}: $CONNECTIONS connections, $DURATION"
wrk -t"$THREADS" -c"$CONNECTIONS" -d"$DURATION" -s "$ROOT/deploy/bench/get_order.lua" "http://127.0.0.1:$PORT"
