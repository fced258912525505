-- Durable work (platform::jobs): refunds and reconciliations, each written in
-- the transaction that decides it and run by workers with a lease, back-off
-- and jitter until done. (kind, key) makes deciding the same work twice
-- enqueue it once; finished jobs are deleted, failing ones end 'parked'.
CREATE TABLE payments.jobs (
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
CREATE INDEX jobs_due_idx ON payments.jobs (run_at) WHERE state = 'pending';

-- The reconciliation scan looks for payments stuck in 'processing'.
CREATE INDEX payments_processing_idx ON payments.payments (updated_at) WHERE status = 'processing';

-- A refunded charge no longer blocks paying the order again (a charge that
-- was rejected, e.g. for a total changed meanwhile, and refunded, must not
-- lock its owner out). Cancelled or paid orders are refused by the order
-- check before any charge.
DROP INDEX payments.payments_one_live_per_order;
CREATE UNIQUE INDEX payments_one_live_per_order
    ON payments.payments (order_id) WHERE status IN ('pending', 'processing', 'succeeded');
