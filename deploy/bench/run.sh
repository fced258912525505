#!/usr/bin/env bash
# `just bench [--quick]`: one run, start to finish, on this machine.
#
# 1. Baselines, in the same run: pgbench with a minimal create-order
#    transaction and with `-S` (primary-key reads), and RabbitMQ's confirmed
#    publish rate.
# 2. Release builds of both services on a fresh database, loaded by our own
#    generator (crates/loadgen): create, get and list at several
#    concurrencies, create again open-loop at half of its best rate, and the
#    full pay flow counted at a subscriber of `order.paid` (at saturation and
#    at half of it); then each service's peak RSS and idle CPU.
# 3. (full run only) Scaling: create, get and list with 10k and with 1M
#    orders stored.
# 4. The report: ratios against the targets, the runs, a chart; a full run
#    appends it, dated, to BENCHMARKS.md and draws docs/bench/latency-throughput.svg.
#
# --quick (CI's smoke test, under 3 minutes) measures each thing briefly,
# with the debug builds the tests already made (BENCH_PROFILE=release for
# release builds), and writes its report under the target directory only; it
# asserts nothing, and its numbers mean nothing.
source "$(dirname "$0")/../local/lib.sh"
QUICK=0
[[ "${1:-}" == "--quick" ]] && QUICK=1
if (( QUICK )); then
    SECONDS_PER_RUN=3; WARMUP=1; PG_SECONDS=4; CONCURRENCIES="4 16"; PAY_CONCURRENCIES="8"; PG_SCALE=2
else
    SECONDS_PER_RUN=15; WARMUP=3; PG_SECONDS=20; CONCURRENCIES="1 4 16 64"; PAY_CONCURRENCIES="16 64 256"; PG_SCALE=10
fi
DB=shop_bench
BASE_DB=bench_baseline
ORDERS=http://127.0.0.1:18080
STAMP="$(date -u +%Y-%m-%dT%H:%M:%SZ)"
OUT="$(target_dir)/bench/$(date -u +%Y%m%dT%H%M%SZ)"
RESULTS="$OUT/results.jsonl"
mkdir -p "$OUT"

ensure_postgres
ensure_rabbitmq
# PostgreSQL as production runs it: with autovacuum. Some machines switch it
# off (their tests only create and drop databases); without it, every UPDATE
# and DELETE of a run stays behind as a dead tuple that later queries step
# over (the outbox's partial index, the jobs queue), and each stage of the
# run degrades the next. Switched on for the run if it was off; restored at
# the end.
restore_autovacuum() {
    if [[ -n "${AUTOVACUUM_RESTORE:-}" ]]; then
        psql_super -d postgres -c "ALTER SYSTEM RESET autovacuum" -c "SELECT pg_reload_conf()" >/dev/null 2>&1 || true
    fi
}
if [[ "$(psql_super -d postgres -Atc "SHOW autovacuum")" == off ]]; then
    say "autovacuum is off on this server: on for this run"
    AUTOVACUUM_RESTORE=1
    psql_super -d postgres -c "ALTER SYSTEM SET autovacuum = on" -c "SELECT pg_reload_conf()" >/dev/null
fi
trap restore_autovacuum EXIT
PROFILE="${BENCH_PROFILE:-$( (( QUICK )) && echo dev || echo release)}"
say "building the binaries ($PROFILE profile)"
cargo build --quiet --profile "$PROFILE" --manifest-path "$ROOT/Cargo.toml" -p orders -p payments -p loadgen
rel="$(target_dir)/$([[ $PROFILE == dev ]] && echo debug || echo "$PROFILE")"
loadgen() { "$rel/loadgen" "$@"; }

# 1. Baselines --------------------------------------------------------------
psql_super -d postgres -c "DROP DATABASE IF EXISTS $BASE_DB WITH (FORCE)" >/dev/null
psql_super -d postgres -c "CREATE DATABASE $BASE_DB" >/dev/null
psql_super -d "$BASE_DB" -f "$ROOT/deploy/bench/baseline.sql" >/dev/null
pgbench_tps() { sed -n 's/^tps = \([0-9.]*\) .*/\1/p' | tail -1; }
say "baseline: pgbench, minimal create-order transaction, 16 clients, ${PG_SECONDS}s"
tps="$(pgbench -n -M prepared -c 16 -j 2 -T "$PG_SECONDS" -h "$PGHOST" -p "$PGPORT" -U "$PGSUPERUSER" \
    -f "$ROOT/deploy/bench/baseline_create.pgbench" "$BASE_DB" 2>/dev/null | pgbench_tps)"
echo "{\"kind\":\"baseline\",\"name\":\"pgbench-create-minimal\",\"concurrency\":16,\"throughput\":${tps:-0}}" >>"$RESULTS"
say "baseline: pgbench, the least a paid order costs (three transactions, each with its event), 16 clients, ${PG_SECONDS}s"
tps="$(pgbench -n -M prepared -c 16 -j 2 -T "$PG_SECONDS" -h "$PGHOST" -p "$PGPORT" -U "$PGSUPERUSER" \
    -f "$ROOT/deploy/bench/baseline_paid_order.pgbench" "$BASE_DB" 2>/dev/null | pgbench_tps)"
echo "{\"kind\":\"baseline\",\"name\":\"pgbench-paid-order\",\"concurrency\":16,\"throughput\":${tps:-0}}" >>"$RESULTS"
say "baseline: pgbench -S (primary-key reads), 16 clients, ${PG_SECONDS}s"
pgbench -i -q -s "$PG_SCALE" -h "$PGHOST" -p "$PGPORT" -U "$PGSUPERUSER" "$BASE_DB" >/dev/null 2>&1
tps="$(pgbench -n -S -M prepared -c 16 -j 2 -T "$PG_SECONDS" -h "$PGHOST" -p "$PGPORT" -U "$PGSUPERUSER" \
    "$BASE_DB" 2>/dev/null | pgbench_tps)"
echo "{\"kind\":\"baseline\",\"name\":\"pgbench-select\",\"concurrency\":16,\"throughput\":${tps:-0}}" >>"$RESULTS"
psql_super -d postgres -c "DROP DATABASE IF EXISTS $BASE_DB WITH (FORCE)" >/dev/null
say "baseline: RabbitMQ confirmed publishes to a quorum queue"
loadgen publish --duration "$PG_SECONDS" --results "$RESULTS" >/dev/null

# 2. The services -----------------------------------------------------------
cleanup() {
    stop_isolated_pair bench
    psql_super -d postgres -c "ALTER SYSTEM RESET log_statement" -c "SELECT pg_reload_conf()" >/dev/null 2>&1 || true
}
trap 'cleanup; restore_autovacuum' EXIT
start_isolated_pair bench "$rel" 18080 "$OUT"
orders_pid=$PAIR_ORDERS_PID
payments_pid=$PAIR_PAYMENTS_PID
export TOKEN="$("$rel/orders" token bench_user --ttl 7200)"
create_one() {
    curl -fsS -X POST "$ORDERS/api/v1/orders" -H "Authorization: Bearer $TOKEN" -H 'Content-Type: application/json' \
        --data-binary @"$ROOT/deploy/bench/create_order.json"
}

# The exact SQL of one order creation, from PostgreSQL's own log: the
# statements the service sent, replayed later by pgbench (see capture_sql.py).
capture_exact_sql() {
    local log offset
    log="$(ls -t /var/log/postgresql/*.log 2>/dev/null | head -1)"
    if [[ ! -r "$log" ]]; then
        say "no readable PostgreSQL log: no exact-SQL baseline"
        return
    fi
    create_one >/dev/null # a warm creation: order numbers are allocated, connections open
    offset="$(stat -c %s "$log")"
    psql_super -d postgres -c "ALTER SYSTEM SET log_statement = 'all'" -c "SELECT pg_reload_conf()" >/dev/null
    sleep 0.5
    create_one >/dev/null
    sleep 0.5
    psql_super -d postgres -c "ALTER SYSTEM RESET log_statement" -c "SELECT pg_reload_conf()" >/dev/null
    python3 "$ROOT/deploy/bench/capture_sql.py" "$log" "$offset" "$DB" >"$OUT/create_exact.pgbench" \
        || rm -f "$OUT/create_exact.pgbench"
}
capture_exact_sql

http_run() { loadgen http --duration "$SECONDS_PER_RUN" --warmup "$WARMUP" --results "$RESULTS" "$@" >/dev/null; }
best() { # the best closed-loop throughput of a run name
    python3 -c "import json,sys; print(max((r['throughput'] for r in map(json.loads, open('$RESULTS')) if r.get('name')=='$1' and r.get('kind')=='service' and r.get('rate') is None), default=0))"
}

for c in $CONCURRENCIES; do
    say "POST /api/v1/orders, $c connections"
    http_run --name create --method POST --url "$ORDERS/api/v1/orders" --body "$ROOT/deploy/bench/create_order.json" --expect 201 --concurrency "$c"
done
half="$(python3 -c "print(max(1.0, $(best create) / 2))")"
say "POST /api/v1/orders at half of saturation ($half/s)"
http_run --name create --method POST --url "$ORDERS/api/v1/orders" --body "$ROOT/deploy/bench/create_order.json" --expect 201 --concurrency 64 --rate "$half"

order_id="$(create_one | python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')"
for c in $CONCURRENCIES; do
    say "GET /api/v1/orders/{id}, $c connections"
    http_run --name get --url "$ORDERS/api/v1/orders/$order_id" --concurrency "$c"
    say "GET /api/v1/orders?limit=20, $c connections"
    http_run --name list --url "$ORDERS/api/v1/orders?limit=20" --concurrency "$c"
done
say "baseline: pgbench running the same page query on the same data, 16 clients, ${PG_SECONDS}s"
tps="$(pgbench -n -M prepared -c 16 -j 2 -T "$PG_SECONDS" -h "$PGHOST" -p "$PGPORT" -U "$PGSUPERUSER" \
    -D user=bench_user -f "$ROOT/deploy/bench/baseline_list.pgbench" "$DB" 2>/dev/null | pgbench_tps)"
echo "{\"kind\":\"baseline\",\"name\":\"pgbench-list-page\",\"concurrency\":16,\"throughput\":${tps:-0}}" >>"$RESULTS"

# Until every event is published and every job done: a stage must not
# measure the backlog the one before left (a saturated pay flow leaves
# seconds of it).
drain() {
    for _ in $(seq 1 240); do
        left="$(psql_super -d "$DB" -Atc "SELECT (SELECT count(*) FROM orders.events WHERE published_at IS NULL)
            + (SELECT count(*) FROM payments.outbox WHERE published_at IS NULL)
            + (SELECT count(*) FROM orders.jobs WHERE state = 'pending')
            + (SELECT count(*) FROM payments.jobs WHERE state = 'pending')")"
        [[ "$left" == 0 ]] && return
        sleep 0.5
    done
}

# Closed loop over the whole flow, as pgbench runs its floor: each
# connection places an order and waits for its order.paid before the next.
for c in $PAY_CONCURRENCIES; do
    drain
    say "the pay flow, $c connections each placing an order with a card and waiting for its order.paid"
    loadgen payflow --url "$ORDERS/api/v1/orders" --body "$ROOT/deploy/bench/pay_order.json" --exchange bench.orders.events \
        --wait-paid --concurrency "$c" --duration "$SECONDS_PER_RUN" --warmup "$WARMUP" --results "$RESULTS" >/dev/null
done
half="$(python3 -c "print(max(1.0, $(best payflow) / 2))")"
drain
say "the pay flow at half of saturation ($half/s)"
loadgen payflow --url "$ORDERS/api/v1/orders" --body "$ROOT/deploy/bench/pay_order.json" --exchange bench.orders.events \
    --concurrency 64 --rate "$half" --duration "$SECONDS_PER_RUN" --warmup "$WARMUP" --results "$RESULTS" >/dev/null

say "resources: peak RSS, and CPU while idle (once every event is published and every job done)"
drain
sleep 5
idle_seconds=$(( QUICK ? 3 : 10 ))
ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
declare -A before
for pid in $orders_pid $payments_pid; do before[$pid]="$(ticks "$pid")"; done
sleep "$idle_seconds"
hz="$(getconf CLK_TCK)"
for entry in "orders:$orders_pid" "payments:$payments_pid"; do
    name="${entry%%:*}"; pid="${entry##*:}"
    peak="$(awk '/^VmHWM/ {print $2}' "/proc/$pid/status")"
    rss="$(awk '/^VmRSS/ {print $2}' "/proc/$pid/status")"
    idle="$(python3 -c "print(round(($(ticks "$pid") - ${before[$pid]}) / $hz / $idle_seconds * 100, 3))")"
    echo "{\"kind\":\"resource\",\"service\":\"$name\",\"peak_rss_kib\":$peak,\"rss_kib\":$rss,\"idle_cpu_percent\":$idle}" >>"$RESULTS"
done

# 3. Scaling (full run only) ------------------------------------------------
if (( ! QUICK )); then
    for stored in 10000 1000000; do
        say "scaling: filling to $stored orders"
        psql_super -d "$DB" -v target="$stored" -f "$ROOT/deploy/bench/fill.sql" >/dev/null
        for name in create get list; do
            case $name in
                create) args=(--method POST --url "$ORDERS/api/v1/orders" --body "$ROOT/deploy/bench/create_order.json" --expect 201) ;;
                get) args=(--url "$ORDERS/api/v1/orders/$order_id") ;;
                list) args=(--url "$ORDERS/api/v1/orders?limit=20") ;;
            esac
            loadgen http --name "$name" --duration "$SECONDS_PER_RUN" --warmup "$WARMUP" --concurrency 16 \
                --results "$OUT/scale.jsonl" "${args[@]}" >/dev/null
            tail -1 "$OUT/scale.jsonl" | python3 -c "import json,sys; r=json.load(sys.stdin); r['kind']='scale'; r['stored']=$stored; print(json.dumps(r))" >>"$RESULTS"
        done
    done
fi

# The exact-SQL baseline, with the services stopped (their relay would
# otherwise publish what pgbench inserts).
cleanup
trap restore_autovacuum EXIT
if [[ -s "$OUT/create_exact.pgbench" ]]; then
    say "baseline: pgbench replaying the service's own statements of one creation, 16 clients, ${PG_SECONDS}s"
    tps="$(pgbench -n -M prepared -c 16 -j 2 -T "$PG_SECONDS" -h "$PGHOST" -p "$PGPORT" -U "$PGSUPERUSER" \
        -f "$OUT/create_exact.pgbench" "$DB" 2>"$OUT/create_exact.err" | pgbench_tps)"
    [[ -n "$tps" ]] && echo "{\"kind\":\"baseline\",\"name\":\"pgbench-create-exact\",\"concurrency\":16,\"throughput\":$tps}" >>"$RESULTS"
fi

# 4. The report ---------------------------------------------------------------
commit="$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)"
mode=$([[ $QUICK == 1 ]] && echo "quick" || echo "full")
if (( QUICK )); then svg="$OUT/latency-throughput.svg"; else svg="$ROOT/docs/bench/latency-throughput.svg"; fi
loadgen report --results "$RESULTS" --out "$OUT/report.md" --svg "$svg" \
    --title "$STAMP · commit $commit · just bench ($mode, $PROFILE build) · $(nproc) cores" >/dev/null
if (( ! QUICK )); then
    { echo; cat "$OUT/report.md"; } >>"$ROOT/BENCHMARKS.md"
    say "appended to BENCHMARKS.md; chart in docs/bench/latency-throughput.svg"
fi
cat "$OUT/report.md"
say "results in $OUT"
