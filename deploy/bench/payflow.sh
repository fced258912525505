#!/usr/bin/env bash
# `just bench-payflow`: the full pay flow under load. Release builds of both
# services on a fresh database `shop_bench` with their own exchange and queue
# names; wrk places orders that carry a card; the database then tells how fast
# orders became paid and how long each took from creation to `order.paid`.
source "$(dirname "$0")/../local/lib.sh"
command -v wrk >/dev/null || die "the benchmark needs wrk (apt-get install wrk)"
DURATION="${DURATION:-20s}"
CONNECTIONS="${CONNECTIONS:-16}"
DB=shop_bench
SECRET=bench-secret-bench-secret-bench-secret-000

ensure_postgres
ensure_rabbitmq
psql_super -d postgres -c "DROP DATABASE IF EXISTS $DB WITH (FORCE)" >/dev/null
psql_super -d postgres -c "CREATE DATABASE $DB" >/dev/null
psql_super -d "$DB" -f "$ROOT/deploy/postgres/init.sql" >/dev/null
cargo build --quiet --release --manifest-path "$ROOT/Cargo.toml" -p orders -p payments
rel="$(target_dir)/release"

export ORDERS_HTTP__PORT=18080 PAYMENTS_HTTP__PORT=18081
export ORDERS_DATABASE__URL="postgres://orders@127.0.0.1:5432/$DB" PAYMENTS_DATABASE__URL="postgres://payments@127.0.0.1:5432/$DB"
export ORDERS_AUTH__HS256_SECRET=$SECRET PAYMENTS_AUTH__HS256_SECRET=$SECRET
export ORDERS_LOG__LEVEL=warn ORDERS_RATE_LIMIT__ENABLED=false PAYMENTS_LOG__LEVEL=warn
export ORDERS_PAYMENTS__URL=http://127.0.0.1:18081 PAYMENTS_ORDERS__URL=http://127.0.0.1:18080
export ORDERS_AMQP__EXCHANGE=bench.orders.events PAYMENTS_AMQP__CONSUME__EXCHANGE=bench.orders.events
export PAYMENTS_AMQP__EXCHANGE=bench.payments.events ORDERS_AMQP__CONSUME__EXCHANGE=bench.payments.events
export ORDERS_AMQP__CONSUME__QUEUE=bench.orders.payment-events PAYMENTS_AMQP__CONSUME__QUEUE=bench.payments.order-events
"$rel/payments" serve >"$RUN_DIR/bench-payments.log" 2>&1 &
payments_pid=$!
"$rel/orders" serve >"$RUN_DIR/bench-orders.log" 2>&1 &
orders_pid=$!
trap 'kill $orders_pid $payments_pid 2>/dev/null' EXIT
for port in 18080 18081; do
    for _ in $(seq 1 60); do curl -fsS "http://127.0.0.1:$port/ready" >/dev/null 2>&1 && break; sleep 0.5; done
done

export TOKEN="$("$rel/orders" token bench_user --ttl 7200)"
say "POST /api/v1/orders with tok_visa: $CONNECTIONS connections, $DURATION"
wrk -t1 -c"$CONNECTIONS" -d"$DURATION" -s "$ROOT/deploy/bench/pay_order.lua" "http://127.0.0.1:18080/api/v1/orders"

say "waiting for every order to be paid"
for _ in $(seq 1 120); do
    left="$(psql_super -d "$DB" -Atc "SELECT count(*) FROM orders.orders WHERE status <> 'paid'")"
    [[ "$left" == 0 ]] && break
    sleep 1
done
psql_super -d "$DB" -c "
WITH paid AS (
    SELECT c.order_id, c.occurred_at AS created, p.occurred_at AS paid
    FROM orders.events c JOIN orders.events p ON p.order_id = c.order_id AND p.event_type = 'order.paid'
    WHERE c.event_type = 'order.created'
)
SELECT count(*) AS paid_orders,
       round(count(*) / extract(epoch FROM max(paid) - min(created))::numeric) AS paid_per_second,
       round(1000 * percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM paid - created))::numeric, 1) AS p50_ms,
       round(1000 * percentile_cont(0.9) WITHIN GROUP (ORDER BY extract(epoch FROM paid - created))::numeric, 1) AS p90_ms,
       round(1000 * percentile_cont(0.99) WITHIN GROUP (ORDER BY extract(epoch FROM paid - created))::numeric, 1) AS p99_ms,
       (SELECT count(*) FROM orders.orders WHERE status <> 'paid') AS not_paid,
       (SELECT count(*) FROM orders.events WHERE published_at IS NULL) AS unpublished
FROM paid"
for queue in bench.orders.payment-events bench.payments.order-events; do
    rabbitmqctl -q delete_queue "$queue" >/dev/null 2>&1 || true
    rabbitmqctl -q delete_queue "$queue.dlq" >/dev/null 2>&1 || true
done
