#!/usr/bin/env python3
"""Development doubles of the services orders depends on, for `just up`:
the User Service and the Catalog Service, speaking the contracts under
contracts/dependencies/. Standard library only.

They know the source documents' examples (docs/source-documents.md), so each
example works against `just up` as written:

Users: any id starting with `demo_`, `usr_` or `ops_` exists, and so do
UUIDs (the technical design's users) and integers (the Django README's),
except `usr_nonexistent` (the order-service spec's unknown user).
Catalog: the order-service spec's prod_123 (29.99 USD), the technical
design's product 123e4567-e89b-12d3-a456-426614174001 with its variant
...4002 (44.99 USD, SKU PROD-001-VAR-002), the Django README's product 1
(999.99 USD), prod_tshirt, prod_mug; a million units of each, for long
benchmark and fault runs. prod_limited (99.00 USD) has one unit, for the
stock-conflict demo. Reservations are held in memory.

`stubs.py 0` picks a free port and prints it on the first line.
"""
import json
import os
import re
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

PLENTY = 1_000_000
TD_PRODUCT = "123e4567-e89b-12d3-a456-426614174001"
TD_VARIANT = "123e4567-e89b-12d3-a456-426614174002"
PRODUCTS = {
    "prod_123": {"name": "Product 123", "sku": "PROD-123", "price": "29.99", "currency": "USD", "stock": PLENTY},
    TD_PRODUCT: {"name": "Product Name", "sku": "PROD-001", "price": "39.99", "currency": "USD", "stock": PLENTY},
    "1": {"name": "Laptop", "sku": "LAPTOP-1", "price": "999.99", "currency": "USD", "stock": PLENTY},
    "prod_tshirt": {"name": "T-shirt", "sku": "TS-1", "price": "29.99", "currency": "USD", "stock": PLENTY},
    "prod_mug": {"name": "Mug", "sku": "MUG-1", "price": "12.50", "currency": "USD", "stock": PLENTY},
    "prod_limited": {"name": "Limited print", "sku": "LTD-1", "price": "99.00", "currency": "USD", "stock": 1},
}
# (product id, variant id) -> the variant's own name, SKU, price and stock.
VARIANTS = {
    (TD_PRODUCT, TD_VARIANT): {
        "name": "Product Name - Variant Name",
        "sku": "PROD-001-VAR-002",
        "price": "44.99",
        "currency": "USD",
        "stock": PLENTY,
    },
}
UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def user_exists(user):
    if user == "usr_nonexistent":
        return False
    return user.startswith(("demo_", "usr_", "ops_")) or UUID.fullmatch(user) or user.isdigit()


def stock_key(line):
    """What stock a reservation line draws from: the variant's, else the product's."""
    return (line["product_id"], line.get("variant_id"))


def stock_of(key):
    item = VARIANTS.get(key) if key[1] is not None else PRODUCTS.get(key[0])
    return None if item is None else item["stock"]
RESERVATIONS = {}  # reservation id -> {product_id: quantity}
LOCK = threading.Lock()


def available(key, excluding=None):
    held = sum(lines.get(key, 0) for rid, lines in RESERVATIONS.items() if rid != excluding)
    return stock_of(key) - held


class Handler(BaseHTTPRequestHandler):
    def reply(self, status, body=None):
        data = b"" if body is None else json.dumps(body).encode()
        self.send_response(status)
        if body is not None:
            self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        if m := re.fullmatch(r"/api/v1/users/([^/]+)", self.path):
            user = m.group(1)
            return self.reply(200, {"id": user}) if user_exists(user) else self.reply(404, {"error": "not found"})
        if m := re.fullmatch(r"/api/v1/products/([^/]+)/variants/([^/]+)", self.path):
            variant = VARIANTS.get((m.group(1), m.group(2)))
            if variant is None:
                return self.reply(404, {"error": "not found"})
            body = {k: v for k, v in variant.items() if k != "stock"}
            return self.reply(200, {"id": m.group(1), "variant_id": m.group(2), **body})
        if m := re.fullmatch(r"/api/v1/products/([^/]+)", self.path):
            product = PRODUCTS.get(m.group(1))
            if product is None:
                return self.reply(404, {"error": "not found"})
            body = {k: v for k, v in product.items() if k != "stock"}
            return self.reply(200, {"id": m.group(1), **body})
        self.reply(404, {"error": "no route"})

    def do_PUT(self):
        m = re.fullmatch(r"/api/v1/reservations/([0-9a-f-]+)", self.path)
        if not m:
            return self.reply(404, {"error": "no route"})
        lines = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))))["items"]
        wanted = {}
        for line in lines:
            key = stock_key(line)
            wanted[key] = wanted.get(key, 0) + line["quantity"]
        with LOCK:
            short = []
            for key, quantity in wanted.items():
                if stock_of(key) is None:
                    continue
                left = available(key, m.group(1))
                if left < quantity:
                    line = {"product_id": key[0], "requested": quantity, "available": max(left, 0)}
                    if key[1] is not None:
                        line["variant_id"] = key[1]
                    short.append(line)
            if short:
                return self.reply(409, {"items": short})
            RESERVATIONS[m.group(1)] = wanted
        self.reply(200, {"reservation_id": m.group(1)})

    def do_DELETE(self):
        m = re.fullmatch(r"/api/v1/reservations/([0-9a-f-]+)", self.path)
        with LOCK:
            found = m is not None and RESERVATIONS.pop(m.group(1), None) is not None
        self.reply(204) if found else self.reply(404, {"error": "not found"})

    def log_message(self, *args):
        pass


if __name__ == "__main__":
    port = int(sys.argv[1]) if len(sys.argv) > 1 else 8090
    # 0.0.0.0 in a container (compose sets STUBS_HOST).
    host = os.environ.get("STUBS_HOST", "127.0.0.1")
    server = ThreadingHTTPServer((host, port), Handler)
    if port == 0:
        print(server.server_address[1], flush=True)
    server.serve_forever()
