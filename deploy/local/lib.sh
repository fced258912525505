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
