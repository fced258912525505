#!/usr/bin/env bash
# `just demo`: an order's whole life through the public API, step by step.
# Needs the services started by `just up`, plus curl and jq.
source "$(dirname "$0")/lib.sh"
command -v jq >/dev/null || die "the demo needs jq"

ORDERS="http://127.0.0.1:${ORDERS_HTTP__PORT:-8080}"
curl -fsS "$ORDERS/ready" >/dev/null || die "orders is not running; run 'just up' first"
bin="$(target_dir)/debug/orders"
USER_TOKEN="$("$bin" token demo_user)"
ADMIN_TOKEN="$("$bin" token demo_admin --scopes "orders.read orders.write orders.admin")"

step() { printf '\n\033[1;32m--- %s\033[0m\n' "$*"; }
call() { # call TOKEN METHOD PATH [BODY]
    local token="$1" method="$2" path="$3" body="${4:-}"
    printf '\033[2m$ curl -X %s %s\033[0m\n' "$method" "$path" >&2
    if [[ -n "$body" ]]; then
        curl -sS -X "$method" "$ORDERS$path" -H "Authorization: Bearer $token" \
            -H 'Content-Type: application/json' -d "$body"
    else
        curl -sS -X "$method" "$ORDERS$path" -H "Authorization: Bearer $token"
    fi
}

step "demo_user places an order (2 T-shirts at 29.99, 1 mug at 12.50)"
order="$(call "$USER_TOKEN" POST /api/v1/orders '{
  "currency": "USD",
  "items": [
    {"product_id": "prod_tshirt", "quantity": 2, "unit_price": "29.99", "name": "T-shirt", "sku": "TS-1"},
    {"product_id": "prod_mug", "quantity": 1, "unit_price": "12.50", "name": "Mug"}
  ],
  "shipping_address": {"first_name": "Ada", "last_name": "Lovelace", "line1": "12 St James'"'"'s Square",
                       "city": "London", "postal_code": "SW1Y 4JH", "country": "GB"},
  "shipping_method": "standard",
  "payment": {"method": "card", "token": "tok_visa"}
}')"
echo "$order" | jq '{id, order_number, status, subtotal, total, items: [.items[] | {name, quantity, unit_price, subtotal}]}'
id="$(echo "$order" | jq -r .id)"

step "an invalid order is refused with every bad field named"
call "$USER_TOKEN" POST /api/v1/orders '{"currency": "USD", "items": [{"product_id": "p", "quantity": 0, "unit_price": "9.999"}], "shipping_address": {"first_name": "Ada", "country": "UK"}}' | jq '{type, title, errors}'
echo "(a price sent as a JSON number is refused too: money is never a float)"

step "demo_user lists their orders"
call "$USER_TOKEN" GET "/api/v1/orders?limit=5" | jq '{total, limit, offset, orders: [.data[] | {order_number, status, total}]}'

step "demo_user may not mark their own order paid"
call "$USER_TOKEN" PATCH "/api/v1/orders/$id" '{"status": "paid"}' | jq '{type, status, detail}'

for status in paid shipped delivered; do
    step "an admin marks it $status"
    call "$ADMIN_TOKEN" PATCH "/api/v1/orders/$id" "{\"status\": \"$status\"}" | jq '{order_number, status, payment_status, version}'
done

step "going backwards is an invalid transition"
call "$ADMIN_TOKEN" PATCH "/api/v1/orders/$id" '{"status": "pending"}' | jq '{type, status, detail}'

step "the order's history (its event stream)"
call "$USER_TOKEN" GET "/api/v1/orders/$id/events" | jq '[.data[] | {sequence, type, actor, occurred_at}]'

step "a second order is cancelled by its owner"
second="$(echo "$order" | jq -c '{currency, shipping_address, items: [.items[] | {product_id, quantity, unit_price}]}')"
id2="$(call "$USER_TOKEN" POST /api/v1/orders "$second" | jq -r .id)"
call "$USER_TOKEN" DELETE "/api/v1/orders/$id2?reason=changed%20my%20mind" | jq '{order_number, status, cancellation_reason}'
