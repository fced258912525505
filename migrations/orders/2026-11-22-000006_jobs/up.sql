-- Durable work (platform::jobs), replacing the hand-written queues of payment
-- requests and stock releases: each job is written in the transaction that
-- decides it and run by workers with a lease, back-off and jitter until done.
-- (kind, key) makes deciding the same work twice enqueue it once; finished
-- jobs are deleted (a payment job's provider token with it), failing ones
-- end 'parked'.
CREATE TABLE orders.jobs (
    id         BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    kind       TEXT        NOT NULL,
    key        TEXT        NOT NULL,
    payload    JSONB       NOT NULL,
    state      TEXT        NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'parked')),
    attempts   INTEGER     NOT NULL DEFAULT 0,
    -- When the job is due; a claim moves it past the worker's lease.
    run_at     TIMESTAMPTZ NOT NULL,
    last_error TEXT,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    CONSTRAINT jobs_kind_key_key UNIQUE (kind, key)
);
CREATE INDEX jobs_due_idx ON orders.jobs (run_at) WHERE state = 'pending';

INSERT INTO orders.jobs (kind, key, payload, attempts, run_at, last_error, created_at)
SELECT 'pay', order_id || ':' || attempt,
       jsonb_build_object('order_id', order_id, 'attempt', attempt, 'user_id', user_id,
                          'amount_minor', amount_minor, 'currency', currency, 'method', method,
                          'token', token, 'traceparent', traceparent),
       tries, next_attempt_at, last_error, created_at
FROM orders.payment_requests WHERE state = 'pending' AND token IS NOT NULL;

INSERT INTO orders.jobs (kind, key, payload, attempts, run_at, last_error, created_at)
SELECT 'release_stock', reservation_id::text, jsonb_build_object('reservation_id', reservation_id),
       tries, next_attempt_at, last_error, created_at
FROM orders.stock_releases WHERE state = 'pending';

DROP TABLE orders.payment_requests;
DROP TABLE orders.stock_releases;

-- Idempotency-Keys are now reserved before any side effect and answered
-- when the work commits: a key without a response is in flight.
ALTER TABLE orders.idempotency_keys
    ALTER COLUMN response_status DROP NOT NULL,
    ALTER COLUMN response_body DROP NOT NULL;
