-- The orders service's schema. Everything lives in schema `orders`; the service
-- touches no other. (The migration runner creates the schema and sets the
-- search_path so diesel's bookkeeping table lands here too.)

-- The event store, which is also the outbox: every change to an order is one
-- row, appended in the transaction that changes the projections below.
CREATE TABLE orders.events (
    -- Global, monotonically assigned position: the relay's cursor.
    position       BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    -- The CloudEvents id (and AMQP message_id) of this event.
    id             UUID        NOT NULL UNIQUE,
    order_id       UUID        NOT NULL,
    -- Per-order, gap-free, starting at 1. The unique constraint is the
    -- optimistic-concurrency guard: two writers appending the same sequence
    -- cannot both commit.
    sequence       INTEGER     NOT NULL CHECK (sequence > 0),
    event_type     TEXT        NOT NULL,
    event_version  SMALLINT    NOT NULL,
    -- The domain event (the facts), read back when the aggregate is replayed.
    payload        JSONB       NOT NULL,
    -- The order as it stood after this event: the published event's data.
    -- Frozen at commit time so relaying never recomputes it.
    snapshot       JSONB       NOT NULL,
    -- Who caused it (the token's subject), for the audit trail.
    actor          TEXT,
    traceparent    TEXT,
    occurred_at    TIMESTAMPTZ NOT NULL,
    published_at   TIMESTAMPTZ,
    CONSTRAINT events_order_sequence_key UNIQUE (order_id, sequence)
);

-- The relay reads unpublished events in position order; this index stays tiny.
CREATE INDEX events_unpublished_idx ON orders.events (position) WHERE published_at IS NULL;

-- Projection: one row per order, updated in the same transaction as the events.
CREATE TABLE orders.orders (
    id                  UUID        PRIMARY KEY,
    order_number        TEXT        NOT NULL,
    user_id             TEXT        NOT NULL,
    status              TEXT        NOT NULL
        CHECK (status IN ('pending', 'paid', 'shipped', 'delivered', 'cancelled')),
    payment_status      TEXT        NOT NULL,
    currency            TEXT        NOT NULL CHECK (char_length(currency) = 3),
    -- Money in exact minor units of `currency`.
    subtotal_minor      BIGINT      NOT NULL CHECK (subtotal_minor >= 0),
    discount_minor      BIGINT      NOT NULL CHECK (discount_minor >= 0),
    tax_minor           BIGINT      NOT NULL CHECK (tax_minor >= 0),
    shipping_minor      BIGINT      NOT NULL CHECK (shipping_minor >= 0),
    total_minor         BIGINT      NOT NULL CHECK (total_minor >= 0),
    shipping_method     TEXT,
    payment_method      TEXT,
    notes               TEXT,
    cancellation_reason TEXT,
    -- The sequence of the last event projected.
    version             INTEGER     NOT NULL,
    created_at          TIMESTAMPTZ NOT NULL,
    updated_at          TIMESTAMPTZ NOT NULL,
    CONSTRAINT orders_order_number_key UNIQUE (order_number)
);

-- Listing: newest first, optionally by owner and/or status.
CREATE INDEX orders_created_idx ON orders.orders (created_at DESC, id DESC);
CREATE INDEX orders_user_created_idx ON orders.orders (user_id, created_at DESC, id DESC);
CREATE INDEX orders_status_created_idx ON orders.orders (status, created_at DESC, id DESC);

CREATE TABLE orders.order_items (
    id               UUID    PRIMARY KEY,
    order_id         UUID    NOT NULL REFERENCES orders.orders (id) ON DELETE CASCADE,
    -- Position of the line within the order (0-based), to keep client order.
    line             INTEGER NOT NULL,
    product_id       TEXT    NOT NULL,
    name             TEXT,
    sku              TEXT,
    quantity         INTEGER NOT NULL CHECK (quantity > 0),
    unit_price_minor BIGINT  NOT NULL CHECK (unit_price_minor >= 0),
    subtotal_minor   BIGINT  NOT NULL CHECK (subtotal_minor >= 0),
    CONSTRAINT order_items_line_key UNIQUE (order_id, line)
);

CREATE TABLE orders.order_addresses (
    order_id    UUID NOT NULL REFERENCES orders.orders (id) ON DELETE CASCADE,
    kind        TEXT NOT NULL CHECK (kind IN ('shipping', 'billing')),
    first_name  TEXT NOT NULL,
    last_name   TEXT NOT NULL,
    line1       TEXT NOT NULL,
    line2       TEXT,
    city        TEXT NOT NULL,
    region      TEXT,
    postal_code TEXT NOT NULL,
    country     TEXT NOT NULL,
    phone       TEXT,
    email       TEXT,
    PRIMARY KEY (order_id, kind)
);

-- Source of order numbers. Each nextval reserves a block of 64 numbers for one
-- service instance (hi/lo), so creating an order costs no extra round trip.
CREATE SEQUENCE orders.order_number_blocks START WITH 1 INCREMENT BY 1;
