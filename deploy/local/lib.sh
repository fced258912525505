# Helpers of the local developer scripts (sourced, not run).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
RUN_DIR="$ROOT/.run"
PGHOST="${PGHOST:-127.0.0.1}"
PGPORT="${PGPORT:-5432}"
PGSUPERUSER="${PGSUPERUSER:-postgres}"
SHOP_DB="${SHOP_DB:-shop}"
mkdir -p "$RUN_DIR"

say() { printf '\033[1;34m==>\033[0m %s\n' "$*" >&2; }
die() { printf '\033[1;31merror:\033[0m %s\n' "$*" >&2; exit 1; }

# Starts the local PostgreSQL cluster if it is not accepting connections.
ensure_postgres() {
    if pg_isready -q -h "$PGHOST" -p "$PGPORT"; then return; fi
    say "starting PostgreSQL"
    command -v pg_ctlcluster >/dev/null || die "PostgreSQL is not running on $PGHOST:$PGPORT and pg_ctlcluster is not available; start it yourself"
    pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -n1)" main start
    for _ in $(seq 1 30); do pg_isready -q -h "$PGHOST" -p "$PGPORT" && return; sleep 1; done
    die "PostgreSQL did not come up"
}

# Starts the local RabbitMQ node if it is not running.
ensure_rabbitmq() {
    if rabbitmqctl -q status >/dev/null 2>&1; then return; fi
    say "starting RabbitMQ"
    command -v rabbitmq-server >/dev/null || die "RabbitMQ is not running and rabbitmq-server is not available; start it yourself"
    rabbitmq-server -detached
    for _ in $(seq 1 60); do rabbitmqctl -q await_startup >/dev/null 2>&1 && return; sleep 1; done
    die "RabbitMQ did not come up"
}

# Every tool `just up` needs, each missing one named with how to get it.
check_prerequisites() {
    local missing=0 tool hint
    for entry in \
        "cargo:Rust, from https://rustup.rs" \
        "psql:PostgreSQL's client (Debian: apt-get install postgresql-client)" \
        "pg_isready:PostgreSQL's client (Debian: apt-get install postgresql-client)" \
        "rabbitmqctl:RabbitMQ (Debian: apt-get install rabbitmq-server)" \
        "python3:Python 3, for the development doubles" \
        "curl:curl (Debian: apt-get install curl)"; do
        tool="${entry%%:*}" hint="${entry#*:}"
        if ! command -v "$tool" >/dev/null; then
            printf '\033[1;31mmissing:\033[0m %s: %s\n' "$tool" "$hint" >&2
            missing=1
        fi
    done
    [[ $missing -eq 0 ]] || die "install what is missing above, then run 'just up' again"
}

# Loads deploy/rabbitmq/definitions.json (vhost `shop`, one user per service
# with its own permissions, the subscriber): the same least-privileged users
# as compose. Idempotent; other vhosts and users are left as they are.
provision_broker() {
    rabbitmqctl -q import_definitions "$ROOT/deploy/rabbitmq/definitions.json" >/dev/null \
        || die "could not load deploy/rabbitmq/definitions.json into RabbitMQ"
}

psql_super() { psql -v ON_ERROR_STOP=1 -q -h "$PGHOST" -p "$PGPORT" -U "$PGSUPERUSER" "$@"; }

# Creates database `shop`, the service roles and their schemas.
provision_database() {
    if ! psql_super -d postgres -Atc "SELECT 1 FROM pg_database WHERE datname = '$SHOP_DB'" | grep -q 1; then
        say "creating database $SHOP_DB"
        psql_super -d postgres -c "CREATE DATABASE \"$SHOP_DB\""
    fi
    psql_super -d "$SHOP_DB" -f "$ROOT/deploy/postgres/init.sql" >/dev/null
}

# The directory cargo builds into (honours CARGO_TARGET_DIR and config).
target_dir() {
    cargo metadata --format-version 1 --no-deps --manifest-path "$ROOT/Cargo.toml" \
        | sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p'
}

# start_service NAME URL: runs the built binary in the background and waits for /ready.
start_service() {
    local name="$1" url="$2" bin
    bin="$(target_dir)/debug/$name"
    if [[ -f "$RUN_DIR/$name.pid" ]] && kill -0 "$(cat "$RUN_DIR/$name.pid")" 2>/dev/null; then
        say "$name is already running (pid $(cat "$RUN_DIR/$name.pid"))"
    else
        say "starting $name (log: .run/$name.log)"
        nohup "$bin" serve >"$RUN_DIR/$name.log" 2>&1 &
        echo $! >"$RUN_DIR/$name.pid"
    fi
    for _ in $(seq 1 60); do
        if curl -fsS "$url/ready" >/dev/null 2>&1; then return; fi
        kill -0 "$(cat "$RUN_DIR/$name.pid")" 2>/dev/null || { tail -n 20 "$RUN_DIR/$name.log" >&2; die "$name exited"; }
        sleep 0.5
    done
    tail -n 20 "$RUN_DIR/$name.log" >&2
    die "$name did not become ready at $url/ready"
}

# Development doubles of the User Service and the Catalog (deploy/local/stubs.py).
start_stubs() {
    local port="${STUBS_PORT:-8090}"
    if [[ -f "$RUN_DIR/stubs.pid" ]] && kill -0 "$(cat "$RUN_DIR/stubs.pid")" 2>/dev/null; then
        return
    fi
    command -v python3 >/dev/null || die "the development doubles need python3"
    say "starting the User Service and Catalog doubles on :$port"
    nohup python3 "$ROOT/deploy/local/stubs.py" "$port" >"$RUN_DIR/stubs.log" 2>&1 &
    echo $! >"$RUN_DIR/stubs.pid"
    for _ in $(seq 1 20); do curl -fsS "http://127.0.0.1:$port/api/v1/users/demo_user" >/dev/null 2>&1 && return; sleep 0.2; done
    die "the doubles did not start"
}

stop_service() {
    local name="$1" pid
    [[ -f "$RUN_DIR/$name.pid" ]] || return 0
    pid="$(cat "$RUN_DIR/$name.pid")"
    if kill -0 "$pid" 2>/dev/null; then
        say "stopping $name (pid $pid)"
        kill -TERM "$pid"
        for _ in $(seq 1 40); do kill -0 "$pid" 2>/dev/null || break; sleep 0.25; done
        kill -0 "$pid" 2>/dev/null && kill -KILL "$pid"
    fi
    rm -f "$RUN_DIR/$name.pid"
}

# start_isolated_pair NAME BIN_DIR ORDERS_PORT LOG_DIR: both services on a
# fresh database `shop_NAME` with exchange and queue names of their own
# (prefix NAME), payments on ORDERS_PORT + 1, rate limits off, logs at warn.
# orders starts first (payments binds to the exchange orders declares); both
# are ready on return. stop_isolated_pair NAME stops them and drops the queues.
start_isolated_pair() {
    local name="$1" bin="$2" port="$3" logs="$4"
    local db="shop_$name" secret="$name-secret-$name-secret-$name-secret-0000"
    psql_super -d postgres -c "DROP DATABASE IF EXISTS $db WITH (FORCE)" >/dev/null
    psql_super -d postgres -c "CREATE DATABASE $db" >/dev/null
    psql_super -d "$db" -f "$ROOT/deploy/postgres/init.sql" >/dev/null
    export ORDERS_HTTP__PORT=$port PAYMENTS_HTTP__PORT=$((port + 1))
    export ORDERS_DATABASE__URL="postgres://orders@127.0.0.1:5432/$db" PAYMENTS_DATABASE__URL="postgres://payments@127.0.0.1:5432/$db"
    export ORDERS_AUTH__HS256_SECRET=$secret PAYMENTS_AUTH__HS256_SECRET=$secret
    export ORDERS_LOG__LEVEL=warn PAYMENTS_LOG__LEVEL=warn
    export ORDERS_RATE_LIMIT__ENABLED=false PAYMENTS_RATE_LIMIT__ENABLED=false
    export MALLOC_ARENA_MAX=2 # as the container image sets it
    export ORDERS_PAYMENTS__URL=http://127.0.0.1:$((port + 1)) PAYMENTS_ORDERS__URL=http://127.0.0.1:$port
    export ORDERS_AMQP__EXCHANGE=$name.orders.events PAYMENTS_AMQP__CONSUME__EXCHANGE=$name.orders.events
    export PAYMENTS_AMQP__EXCHANGE=$name.payments.events ORDERS_AMQP__CONSUME__EXCHANGE=$name.payments.events
    export ORDERS_AMQP__CONSUME__QUEUE=$name.orders.payment-events PAYMENTS_AMQP__CONSUME__QUEUE=$name.payments.order-events
    "$bin/orders" serve >"$logs/$name-orders.log" 2>&1 &
    PAIR_ORDERS_PID=$!
    wait_ready "http://127.0.0.1:$port" "$PAIR_ORDERS_PID" "$logs/$name-orders.log"
    "$bin/payments" serve >"$logs/$name-payments.log" 2>&1 &
    PAIR_PAYMENTS_PID=$!
    wait_ready "http://127.0.0.1:$((port + 1))" "$PAIR_PAYMENTS_PID" "$logs/$name-payments.log"
}

stop_isolated_pair() {
    local name="$1" queue
    kill "${PAIR_ORDERS_PID:-}" "${PAIR_PAYMENTS_PID:-}" 2>/dev/null || true
    for queue in "$name.orders.payment-events" "$name.payments.order-events"; do
        rabbitmqctl -q delete_queue "$queue" >/dev/null 2>&1 || true
        rabbitmqctl -q delete_queue "$queue.dlq" >/dev/null 2>&1 || true
    done
}

# wait_ready URL PID LOG: until URL/ready answers; dies with the log's tail
# if the process exits or a minute passes.
wait_ready() {
    local url="$1" pid="$2" log="$3"
    for _ in $(seq 1 120); do
        curl -fsS "$url/ready" >/dev/null 2>&1 && return
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.5
    done
    tail -n 20 "$log" >&2
    die "the service at $url did not become ready"
}
