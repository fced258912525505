-- Idempotency-Key records of POST /api/v1/orders: written in the transaction
-- that places the order, with the response it answered, so a retry replays it
-- byte for byte. Expired keys are swept.
CREATE TABLE orders.idempotency_keys (
    owner           TEXT        NOT NULL,
    key             TEXT        NOT NULL,
    request_hash    TEXT        NOT NULL,
    response_status SMALLINT    NOT NULL,
    response_body   BYTEA       NOT NULL,
    created_at      TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (owner, key)
);
CREATE INDEX idempotency_keys_created_idx ON orders.idempotency_keys (created_at);
