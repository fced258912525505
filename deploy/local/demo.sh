#!/usr/bin/env bash
# `just demo`: the whole platform through its public APIs, step by step.
# Needs the services started by `just up`, plus curl and jq.
source "$(dirname "$0")/lib.sh"
command -v jq >/dev/null || die "the demo needs jq"

ORDERS="http://127.0.0.1:${ORDERS_HTTP__PORT:-8080}"
PAYMENTS="http://127.0.0.1:${PAYMENTS_HTTP__PORT:-8081}"
curl -fsS "$ORDERS/ready" >/dev/null || die "orders is not running; run 'just up' first"
curl -fsS "$PAYMENTS/ready" >/dev/null || die "payments is not running; run 'just up' first"
bin="$(target_dir)/debug/orders"
USER_TOKEN="$("$bin" token demo_user)"
ADMIN_TOKEN="$("$bin" token demo_admin --scopes "orders.read orders.write orders.admin")"

step() { printf '\n\033[1;32m--- %s\033[0m\n' "$*"; }
call() { # call TOKEN METHOD URL [BODY [EXTRA_HEADER]]
    local token="$1" method="$2" url="$3" body="${4:-}" extra="${5:-}"
    printf '\033[2m$ curl -X %s %s\033[0m\n' "$method" "${url#http://127.0.0.1:}" >&2
    local args=(-sS -X "$method" "$url" -H "Authorization: Bearer $token")
    [[ -n "$extra" ]] && args+=(-H "$extra")
    [[ -n "$body" ]] && args+=(-H 'Content-Type: application/json' -d "$body")
    curl "${args[@]}"
}
# wait_for ID JQ_CONDITION: polls the order until the condition holds.
wait_for() {
    local id="$1" condition="$2"
    for _ in $(seq 1 100); do
        if call "$USER_TOKEN" GET "$ORDERS/api/v1/orders/$id" 2>/dev/null | jq -e "$condition" >/dev/null; then return; fi
        sleep 0.1
    done
    die "timed out waiting for $condition"
}
order_body() { # order_body CARD_TOKEN
    cat <<JSON
{
  "currency": "USD",
  "items": [
    {"product_id": "prod_tshirt", "quantity": 2, "unit_price": "29.99", "name": "T-shirt", "sku": "TS-1"},
    {"product_id": "prod_mug", "quantity": 1, "unit_price": "12.50", "name": "Mug"}
  ],
  "shipping_address": {"first_name": "Ada", "last_name": "Lovelace", "line1": "12 St James's Square",
                       "city": "London", "postal_code": "SW1Y 4JH", "country": "GB"},
  "shipping_method": "standard",
  "payment": {"method": "card", "token": "$1"}
}
JSON
}
summary='{order_number, status, payment_status, total, version}'

step "1. demo_user places an order paying with tok_visa"
order="$(call "$USER_TOKEN" POST "$ORDERS/api/v1/orders" "$(order_body tok_visa)")"
echo "$order" | jq "$summary"
id="$(echo "$order" | jq -r .id)"

step "   orders asks payments to charge it; payment.successful comes back over RabbitMQ"
wait_for "$id" '.status == "paid"'
call "$USER_TOKEN" GET "$ORDERS/api/v1/orders/$id" | jq "$summary"
call "$USER_TOKEN" GET "$PAYMENTS/api/v1/payments?order_id=$id" | jq '[.data[] | {status, amount, currency, provider_reference}]'

step "   an admin ships and delivers it"
call "$ADMIN_TOKEN" PATCH "$ORDERS/api/v1/orders/$id" '{"status": "shipped"}' | jq -c "$summary"
call "$ADMIN_TOKEN" PATCH "$ORDERS/api/v1/orders/$id" '{"status": "delivered"}' | jq -c "$summary"

step "   its history"
call "$USER_TOKEN" GET "$ORDERS/api/v1/orders/$id/events" | jq -c '.data[] | {sequence, type, actor}'

step "2. a second order, paid with a card that is declined"
order2="$(call "$USER_TOKEN" POST "$ORDERS/api/v1/orders" "$(order_body tok_chargeDeclined)")"
id2="$(echo "$order2" | jq -r .id)"
wait_for "$id2" '.payment_status == "failed"'
call "$USER_TOKEN" GET "$ORDERS/api/v1/orders/$id2" | jq "$summary"
call "$USER_TOKEN" GET "$ORDERS/api/v1/orders/$id2/events" | jq -c '.data[] | {sequence, type, reason: .data.reason}'

payment_body="$(echo "$order2" | jq -c '{order_id: .id, amount: .total, currency, method: "card", token: "tok_visa"}')"
step "   a stranger cannot pay it (or hold it hostage); a wrong amount is refused, nothing charged"
STRANGER_TOKEN="$("$bin" token demo_stranger)"
call "$STRANGER_TOKEN" POST "$PAYMENTS/api/v1/payments" "$(echo "$payment_body" | jq -c '.amount = "0.01"')" | jq -c '{type, status}'
call "$USER_TOKEN" POST "$PAYMENTS/api/v1/payments" "$(echo "$payment_body" | jq -c '.amount = "0.01"')" | jq -c '{type, expected_amount, expected_currency}'

step "   demo_user pays it again with a good card (Idempotency-Key makes the retry safe)"
key="demo-$(date +%s)-$RANDOM"
call "$USER_TOKEN" POST "$PAYMENTS/api/v1/payments" "$payment_body" "Idempotency-Key: $key" | jq -c '{id, status, amount}'
step "   the same request again is replayed, not charged twice"
curl -sS -o /dev/null -D - -X POST "$PAYMENTS/api/v1/payments" -H "Authorization: Bearer $USER_TOKEN" \
    -H 'Content-Type: application/json' -H "Idempotency-Key: $key" -d "$payment_body" | grep -i -E "^(HTTP|idempotent-replayed)"
wait_for "$id2" '.status == "paid"'
call "$USER_TOKEN" GET "$ORDERS/api/v1/orders/$id2" | jq -c "$summary"

step "   demo_user cancels it: payments refunds the charge"
call "$USER_TOKEN" DELETE "$ORDERS/api/v1/orders/$id2?reason=changed%20my%20mind" | jq -c "$summary"
wait_for "$id2" '.payment_status == "refunded"'
call "$USER_TOKEN" GET "$ORDERS/api/v1/orders/$id2/events" | jq -c '.data[] | {sequence, type, actor}'
call "$USER_TOKEN" GET "$PAYMENTS/api/v1/payments?order_id=$id2" | jq -c '.data[] | {status, failure_reason}'

PAY_ADMIN_TOKEN="$("$bin" token demo_admin --scopes "payments.read payments.write payments.admin")"
step "3. money in parts: the shop holds the money when the order is placed and takes it when it ships"
order3="$(call "$USER_TOKEN" POST "$ORDERS/api/v1/orders" "$(order_body tok_visa | jq -c 'del(.payment)')")"
id3="$(echo "$order3" | jq -r .id)"
manual_body="$(echo "$order3" | jq -c '{order_id: .id, amount: .total, currency, method: "card", token: "tok_visa", capture_method: "manual"}')"
payment3="$(call "$USER_TOKEN" POST "$PAYMENTS/api/v1/payments" "$manual_body" "Idempotency-Key: demo-manual-$(date +%s)-$RANDOM")"
echo "$payment3" | jq -c '{status, amount, captured_amount}'
pid3="$(echo "$payment3" | jq -r .id)"
wait_for "$id3" '.payment_status == "authorized"'
call "$USER_TOKEN" GET "$ORDERS/api/v1/orders/$id3" | jq -c "$summary"
step "   shipping captures first (202); the order is shipped once the money is taken"
curl -sS -o /dev/null -w 'HTTP %{http_code}\n' -X PATCH "$ORDERS/api/v1/orders/$id3" -H "Authorization: Bearer $ADMIN_TOKEN" \
    -H 'Content-Type: application/json' -d '{"status": "shipped", "carrier": "UPS", "tracking_number": "1Z999AA10123456784"}'
wait_for "$id3" '.status == "shipped"'
call "$USER_TOKEN" GET "$ORDERS/api/v1/orders/$id3" | jq -c "$summary"
call "$USER_TOKEN" GET "$PAYMENTS/api/v1/payments/$pid3" | jq -c '{status, amount, captured_amount}'
call "$ADMIN_TOKEN" PATCH "$ORDERS/api/v1/orders/$id3" '{"status": "delivered"}' | jq -c "$summary"
step "   the mug arrives broken: demo_user returns that line, the shop receives it and refunds its share"
mug="$(echo "$order3" | jq -r '.items[] | select(.product_id == "prod_mug") | .id')"
returned="$(call "$USER_TOKEN" POST "$ORDERS/api/v1/orders/$id3/returns" "{\"items\": [{\"item_id\": \"$mug\", \"quantity\": 1}], \"reason\": \"damaged\"}")"
echo "$returned" | jq -c '.returns'
return_id="$(echo "$returned" | jq -r '.returns[0].id')"
call "$ADMIN_TOKEN" POST "$ORDERS/api/v1/orders/$id3/returns/$return_id/receive" | jq -c '.returns'
wait_for "$id3" '.payment_status == "partially_refunded"'
call "$USER_TOKEN" GET "$ORDERS/api/v1/orders/$id3" | jq -c "$summary"
call "$USER_TOKEN" GET "$PAYMENTS/api/v1/payments/$pid3" | jq -c '{status, captured_amount, refunded_amount}'
call "$USER_TOKEN" GET "$PAYMENTS/api/v1/payments/$pid3/refunds" | jq -c '.data[] | {amount, status, reason, items}'
call "$USER_TOKEN" GET "$ORDERS/api/v1/orders/$id3/events" | jq -c '.data[] | {sequence, type}'
step "   the same line cannot come back twice"
call "$USER_TOKEN" POST "$ORDERS/api/v1/orders/$id3/returns" "{\"items\": [{\"item_id\": \"$mug\", \"quantity\": 1}], \"reason\": \"again\"}" | jq -c '{type, returnable_quantity}'
step "   refunding more than remains is refused, nothing moves"
call "$PAY_ADMIN_TOKEN" POST "$PAYMENTS/api/v1/payments/$pid3/refunds" '{"amount": "100.00"}' | jq -c '{type, refundable_amount}'

step "4. a user the User Service does not know cannot place an order"
GHOST_TOKEN="$("$bin" token ghost_user)"
call "$GHOST_TOKEN" POST "$ORDERS/api/v1/orders" "$(order_body tok_visa)" | jq -c '{type, title, status, detail}'

step "   the catalogue has one limited print: asking for two is a stock conflict"
limited="$(order_body tok_visa | jq -c '.items = [{"product_id": "prod_limited", "quantity": 2}]')"
call "$USER_TOKEN" POST "$ORDERS/api/v1/orders" "$limited" | jq -c '{type, title, status, items}'
step "   prices come from the catalogue: a client-sent price is ignored"
cheap="$(order_body tok_visa | jq -c '.items = [{"product_id": "prod_mug", "quantity": 1, "unit_price": "0.01"}] | del(.payment)')"
call "$USER_TOKEN" POST "$ORDERS/api/v1/orders" "$cheap" | jq -c '{order_number, items: [.items[] | {name, sku, unit_price}], total}'

step "5. bad input is refused, every bad field named, nothing written"
call "$USER_TOKEN" POST "$ORDERS/api/v1/orders" '{"currency": "USD", "items": [{"product_id": "p", "quantity": 0, "unit_price": "9.999"}], "shipping_address": {"first_name": "Ada", "country": "UK"}}' | jq -c '.errors[]'
step "   and card numbers never enter the system"
call "$USER_TOKEN" POST "$PAYMENTS/api/v1/payments" "$(echo "$payment_body" | jq -c '.token = "4242 4242 4242 4242"')" | jq -c '{type, title, detail}'

step "6. the people on call: the operators' console (shopctl), with a token holding orders.ops and payments.ops"
export SHOPCTL_TOKEN="$("$bin" token demo_oncall --scopes "orders.ops payments.ops")"
export ORDERS_URL="$ORDERS" PAYMENTS_URL="$PAYMENTS"
shopctl="$(target_dir)/debug/shopctl"
"$shopctl" outbox status
"$shopctl" dead-letters list
"$shopctl" jobs list --service payments
step "   the mug's order, told across both services in time order (also a page: GET $ORDERS/ops/orders/$id3)"
"$shopctl" story "$id3"
