-- Stock reservations to release at the catalogue (reservation id = order id),
-- written in the transaction that cancels the order, then released by a
-- worker with retries. The primary key makes a release requested twice
-- happen once.
CREATE TABLE orders.stock_releases (
    reservation_id  UUID        PRIMARY KEY,
    state           TEXT        NOT NULL CHECK (state IN ('pending', 'done')),
    tries           INTEGER     NOT NULL DEFAULT 0,
    next_attempt_at TIMESTAMPTZ NOT NULL,
    last_error      TEXT,
    created_at      TIMESTAMPTZ NOT NULL,
    updated_at      TIMESTAMPTZ NOT NULL
);
CREATE INDEX stock_releases_due_idx ON orders.stock_releases (next_attempt_at) WHERE state = 'pending';
