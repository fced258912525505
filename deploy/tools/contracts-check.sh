#!/usr/bin/env bash
# `just contracts-check`: the checked-in contracts, checked by the ecosystem's
# own tools, and both live services fuzzed against their OpenAPI documents.
#  1. openapi-spec-validator on contracts/openapi/*.json
#  2. the AsyncAPI parser on contracts/asyncapi.yaml
#  3. every JSON Schema under contracts/schemas checked against its meta-schema
#     (real events are validated against them by the end-to-end tests)
#  4. schemathesis against both running services with a valid token: no 5xx,
#     and status codes, content types, headers and bodies as documented
source "$(dirname "$0")/../local/lib.sh"
TOOLS="${CONTRACT_TOOLS:-$HOME/.cache/orders-platform}"
VENV="$TOOLS/venv"
NODE_DIR="$TOOLS/node"
EXAMPLES="${SCHEMATHESIS_EXAMPLES:-25}"

if ! "$VENV/bin/python" -c "import openapi_spec_validator, schemathesis" 2>/dev/null \
    || ! cmp -s "$ROOT/deploy/tools/requirements.txt" "$VENV/.requirements"; then
    say "installing the Python contract tools"
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install -q -r "$ROOT/deploy/tools/requirements.txt"
    cp "$ROOT/deploy/tools/requirements.txt" "$VENV/.requirements"
fi
if ! cmp -s "$ROOT/deploy/tools/package.json" "$NODE_DIR/package.json" || [[ ! -d "$NODE_DIR/node_modules/@asyncapi/parser" ]]; then
    say "installing the AsyncAPI parser"
    mkdir -p "$NODE_DIR"
    cp "$ROOT/deploy/tools/package.json" "$NODE_DIR/package.json"
    (cd "$NODE_DIR" && npm install --silent --no-audit --no-fund)
fi

say "OpenAPI: openapi-spec-validator"
for file in "$ROOT"/contracts/openapi/*.json "$ROOT"/contracts/dependencies/*.yaml; do
    "$VENV/bin/openapi-spec-validator" "$file"
done

say "AsyncAPI: @asyncapi/parser"
cp "$ROOT/deploy/tools/asyncapi-validate.mjs" "$NODE_DIR/"
node "$NODE_DIR/asyncapi-validate.mjs" "$ROOT/contracts/asyncapi.yaml"

say "JSON Schemas: meta-schema check"
"$VENV/bin/python" - "$ROOT"/contracts/schemas/*.json <<'PY'
import json, sys
from jsonschema import Draft202012Validator
for path in sys.argv[1:]:
    Draft202012Validator.check_schema(json.load(open(path)))
print(f"{len(sys.argv) - 1} schemas valid (draft 2020-12)")
PY

say "schemathesis: both services live"
ensure_postgres
ensure_rabbitmq
DB=shop_contracts
psql_super -d postgres -c "DROP DATABASE IF EXISTS $DB WITH (FORCE)" >/dev/null
psql_super -d postgres -c "CREATE DATABASE $DB" >/dev/null
psql_super -d "$DB" -f "$ROOT/deploy/postgres/init.sql" >/dev/null
cargo build --quiet --manifest-path "$ROOT/Cargo.toml" -p orders -p payments
bin="$(target_dir)/debug"
SECRET=contracts-check-secret-contracts-check-0001
export ORDERS_HTTP__PORT=18180 PAYMENTS_HTTP__PORT=18181
export ORDERS_DATABASE__URL="postgres://orders@127.0.0.1:5432/$DB" PAYMENTS_DATABASE__URL="postgres://payments@127.0.0.1:5432/$DB"
export ORDERS_AUTH__HS256_SECRET=$SECRET PAYMENTS_AUTH__HS256_SECRET=$SECRET
export ORDERS_LOG__LEVEL=warn PAYMENTS_LOG__LEVEL=warn
# The limiter has its own tests; here it would keep the fuzzer from the logic.
export ORDERS_RATE_LIMIT__ENABLED=false PAYMENTS_RATE_LIMIT__ENABLED=false
export ORDERS_PAYMENTS__URL=http://127.0.0.1:18181 PAYMENTS_ORDERS__URL=http://127.0.0.1:18180
export ORDERS_AMQP__EXCHANGE=contracts.orders.events PAYMENTS_AMQP__CONSUME__EXCHANGE=contracts.orders.events
export PAYMENTS_AMQP__EXCHANGE=contracts.payments.events ORDERS_AMQP__CONSUME__EXCHANGE=contracts.payments.events
export ORDERS_AMQP__CONSUME__QUEUE=contracts.orders.payment-events PAYMENTS_AMQP__CONSUME__QUEUE=contracts.payments.order-events
"$bin/payments" serve >"$RUN_DIR/contracts-payments.log" 2>&1 &
payments_pid=$!
"$bin/orders" serve >"$RUN_DIR/contracts-orders.log" 2>&1 &
orders_pid=$!
cleanup() {
    kill "$orders_pid" "$payments_pid" 2>/dev/null || true
    for queue in contracts.orders.payment-events contracts.payments.order-events; do
        rabbitmqctl -q delete_queue "$queue" >/dev/null 2>&1 || true
        rabbitmqctl -q delete_queue "$queue.dlq" >/dev/null 2>&1 || true
    done
}
trap cleanup EXIT
for port in 18180 18181; do
    for _ in $(seq 1 60); do curl -fsS "http://127.0.0.1:$port/ready" >/dev/null 2>&1 && break; sleep 0.5; done
done
token="$("$bin/orders" token schemathesis --scopes "orders.read orders.write orders.admin payments.read payments.write payments.admin")"
checks=not_a_server_error,status_code_conformance,content_type_conformance,response_headers_conformance,response_schema_conformance
for service in orders:18180 payments:18181; do
    name="${service%%:*}" port="${service##*:}"
    say "schemathesis → $name"
    "$VENV/bin/schemathesis" run "$ROOT/contracts/openapi/$name.json" \
        --url "http://127.0.0.1:$port" \
        -H "Authorization: Bearer $token" \
        --checks "$checks" \
        --max-examples "$EXAMPLES" \
        --phases examples,coverage,fuzzing \
        --suppress-health-check all \
        --no-color
done
