-- `just bench` scaling: fills schema `orders` up to :target orders by
-- cloning a placed order (its row, lines and its published `order.created`,
-- without its sealed personal part) under new ids, numbers and 1,000 users, so that the same
-- endpoints can be measured against 10k and 1M stored orders.
\set ON_ERROR_STOP on
SELECT count(*) AS have FROM orders.orders \gset
SELECT id AS template FROM orders.orders WHERE version = 1 ORDER BY created_at LIMIT 1 \gset
SELECT greatest(:target - :have, 0) AS missing \gset
ALTER TABLE orders.events DISABLE TRIGGER USER;
BEGIN;
CREATE TEMP TABLE fill ON COMMIT DROP AS
    SELECT g, md5('fill:' || :have || ':' || g)::uuid AS id,
           'FIL-' || lpad(to_hex(:have + g), 10, '0') AS number,
           'bench_fill_' || (g % 1000) AS user_id,
           now() - make_interval(secs => g) AS at
    FROM generate_series(1, :missing) g;
INSERT INTO orders.orders (id, order_number, user_id, status, payment_status, currency,
    subtotal_minor, discount_minor, tax_minor, shipping_minor, total_minor, shipping_method,
    payment_method, version, created_at, updated_at, tax_rate_bp,
    shipping_fee_minor, coupon, carrier, tracking_number, completed_at, cancelled_at)
SELECT f.id, f.number, f.user_id, o.status, o.payment_status, o.currency,
    o.subtotal_minor, o.discount_minor, o.tax_minor, o.shipping_minor, o.total_minor, o.shipping_method,
    o.payment_method, 1, f.at, f.at, o.tax_rate_bp,
    o.shipping_fee_minor, o.coupon, o.carrier, o.tracking_number, o.completed_at, o.cancelled_at
FROM fill f, orders.orders o WHERE o.id = :'template';
INSERT INTO orders.order_items (id, order_id, line, product_id, name, sku, quantity,
    unit_price_minor, subtotal_minor, variant_id)
SELECT gen_random_uuid(), f.id, i.line, i.product_id, i.name, i.sku, i.quantity,
    i.unit_price_minor, i.subtotal_minor, i.variant_id
FROM fill f, orders.order_items i WHERE i.order_id = :'template';
-- The clones' snapshots pass through jsonb (other key order and spacing than
-- the service writes), so they are marked shape 0: read, they are rendered
-- afresh, as a snapshot of an older representation would be.
INSERT INTO orders.events (id, order_id, sequence, event_type, event_version, payload, snapshot,
                           snapshot_shape, actor, traceparent, occurred_at, published_at)
SELECT gen_random_uuid(), f.id, e.sequence, e.event_type, e.event_version, e.payload,
       (e.snapshot::jsonb || jsonb_build_object('id', f.id, 'order_number', f.number, 'user_id', f.user_id))::json,
       0, f.user_id, NULL, f.at, f.at
FROM fill f, orders.events e WHERE e.order_id = :'template' AND e.sequence = 1;
COMMIT;
ALTER TABLE orders.events ENABLE TRIGGER USER;
ANALYZE orders.orders;
ANALYZE orders.order_items;
ANALYZE orders.events;
