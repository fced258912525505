-- The database's own limit for creating an order, the minimal way: one
-- transaction inserting the order, its 2 lines and 1 jsonb event (the
-- shape of orders' schema without its projections of addresses, its
-- snapshot and its indexes). `just bench` runs it with pgbench, prepared.
DROP SCHEMA IF EXISTS baseline CASCADE;
CREATE SCHEMA baseline;
CREATE TABLE baseline.orders (
    id uuid PRIMARY KEY,
    user_id text NOT NULL,
    status text NOT NULL,
    currency text NOT NULL,
    total_minor bigint NOT NULL,
    version integer NOT NULL,
    created_at timestamptz NOT NULL,
    updated_at timestamptz NOT NULL
);
CREATE TABLE baseline.order_items (
    order_id uuid NOT NULL REFERENCES baseline.orders,
    line integer NOT NULL,
    product_id text NOT NULL,
    quantity integer NOT NULL,
    unit_price_minor bigint NOT NULL,
    PRIMARY KEY (order_id, line)
);
CREATE TABLE baseline.events (
    position bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    id uuid NOT NULL,
    order_id uuid NOT NULL,
    sequence integer NOT NULL,
    event_type text NOT NULL,
    payload jsonb NOT NULL,
    occurred_at timestamptz NOT NULL,
    UNIQUE (order_id, sequence)
);
-- The least a paid order costs (deploy/bench/baseline_paid_order.pgbench):
-- the creation above, then a payment with its outbox event, then the order
-- marked paid with its event; three committed transactions.
CREATE TABLE baseline.payments (
    id uuid PRIMARY KEY,
    order_id uuid NOT NULL UNIQUE,
    amount_minor bigint NOT NULL,
    currency text NOT NULL,
    status text NOT NULL,
    created_at timestamptz NOT NULL,
    updated_at timestamptz NOT NULL
);
CREATE TABLE baseline.payment_outbox (
    position bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    id uuid NOT NULL,
    event_type text NOT NULL,
    payload jsonb NOT NULL,
    occurred_at timestamptz NOT NULL
);
