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
cargo build --quiet --manifest-path "$ROOT/Cargo.toml" -p orders -p payments
bin="$(target_dir)/debug"
trap 'stop_isolated_pair contracts' EXIT
# Every answer the fuzzer provokes must be one the document lists: the
# services answer anything else 500 undocumented_answer, which
# not_a_server_error reports.
export ORDERS_HTTP__CHECK_CONTRACT=true PAYMENTS_HTTP__CHECK_CONTRACT=true
start_isolated_pair contracts "$bin" 18180 "$RUN_DIR"
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
