DROP TABLE orders.coupon_uses;
ALTER TABLE orders.orders
    DROP COLUMN coupon,
    DROP COLUMN carrier,
    DROP COLUMN tracking_number,
    DROP COLUMN completed_at,
    DROP COLUMN cancelled_at;
ALTER TABLE orders.order_items DROP COLUMN variant_id;
