-- `just bench` scaling: fills schema `orders` up to :target orders by
-- cloning a placed order (its row, lines, addresses and its published
-- `order.created`) under new ids, numbers and 1,000 users, so that the same
-- endpoints can be measured against 10k and 1M stored orders.
\set ON_ERROR_STOP on
SELECT count(*) AS have FROM orders.orders \gset
SELECT id AS template FROM orders.orders ORDER BY created_at LIMIT 1 \gset
SELECT greatest(:target - :have, 0) AS missing \gset
ALTER TABLE orders.events DISABLE TRIGGER USER;
BEGIN;
CREATE TEMP TABLE fill ON COMMIT DROP AS
    SELECT g, md5('fill:' || :have || ':' || g)::uuid AS id,
           'FIL-' || lpad(to_hex(:have + g), 10, '0') AS number,
           'bench_fill_' || (g % 1000) AS user_id,
           now() - make_interval(secs => g) AS at
    FROM generate_series(1, :missing) g;
INSERT INTO orders.orders
SELECT (jsonb_populate_record(NULL::orders.orders, to_jsonb(o) || jsonb_build_object(
        'id', f.id, 'order_number', f.number, 'user_id', f.user_id,
        'created_at', f.at, 'updated_at', f.at))).*
FROM fill f, orders.orders o WHERE o.id = :'template';
INSERT INTO orders.order_items
SELECT (jsonb_populate_record(NULL::orders.order_items, to_jsonb(i) || jsonb_build_object(
        'order_id', f.id) || CASE WHEN to_jsonb(i) ? 'id' THEN jsonb_build_object('id', gen_random_uuid()) ELSE '{}' END)).*
FROM fill f, orders.order_items i WHERE i.order_id = :'template';
INSERT INTO orders.order_addresses
SELECT (jsonb_populate_record(NULL::orders.order_addresses, to_jsonb(a) || jsonb_build_object(
        'order_id', f.id) || CASE WHEN to_jsonb(a) ? 'id' THEN jsonb_build_object('id', gen_random_uuid()) ELSE '{}' END)).*
FROM fill f, orders.order_addresses a WHERE a.order_id = :'template';
INSERT INTO orders.events (id, order_id, sequence, event_type, event_version, payload, snapshot,
                           actor, traceparent, occurred_at, published_at)
SELECT gen_random_uuid(), f.id, e.sequence, e.event_type, e.event_version, e.payload,
       e.snapshot || jsonb_build_object('id', f.id, 'order_number', f.number, 'user_id', f.user_id),
       f.user_id, NULL, f.at, f.at
FROM fill f, orders.events e WHERE e.order_id = :'template' AND e.sequence = 1;
COMMIT;
ALTER TABLE orders.events ENABLE TRIGGER USER;
ANALYZE orders.orders;
ANALYZE orders.order_items;
ANALYZE orders.order_addresses;
ANALYZE orders.events;
