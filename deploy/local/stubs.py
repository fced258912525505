#!/usr/bin/env python3
"""Development doubles of the services orders depends on, for `just up`:
the User Service and the Catalog Service, speaking the contracts under
contracts/dependencies/. Standard library only.

Users: any id starting with `demo_`, `usr_` or `ops_` exists; others do not.
Catalog: prod_tshirt (29.99 USD, 100 in stock), prod_mug (12.50 USD, 100),
prod_limited (99.00 USD, 1 in stock), with reservations held in memory.
"""
import json
import re
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

PRODUCTS = {
    "prod_tshirt": {"name": "T-shirt", "sku": "TS-1", "price": "29.99", "currency": "USD", "stock": 100},
    "prod_mug": {"name": "Mug", "sku": "MUG-1", "price": "12.50", "currency": "USD", "stock": 100},
    "prod_limited": {"name": "Limited print", "sku": "LTD-1", "price": "99.00", "currency": "USD", "stock": 1},
}
RESERVATIONS = {}  # reservation id -> {product_id: quantity}
LOCK = threading.Lock()


def available(product_id, excluding=None):
    held = sum(lines.get(product_id, 0) for rid, lines in RESERVATIONS.items() if rid != excluding)
    return PRODUCTS[product_id]["stock"] - held


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
            known = user.startswith(("demo_", "usr_", "ops_"))
            return self.reply(200, {"id": user}) if known else self.reply(404, {"error": "not found"})
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
            wanted[line["product_id"]] = wanted.get(line["product_id"], 0) + line["quantity"]
        with LOCK:
            short = [
                {"product_id": p, "requested": q, "available": max(available(p, m.group(1)), 0)}
                for p, q in wanted.items()
                if p in PRODUCTS and available(p, m.group(1)) < q
            ]
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
    ThreadingHTTPServer(("127.0.0.1", port), Handler).serve_forever()
