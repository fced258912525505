DROP TABLE orders.idempotency_keys;
