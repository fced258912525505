-- What the source documents name and the first version did not keep:
-- product variants, coupons, fulfilment details, completion and
-- cancellation times. Orders of digital goods have no address rows.
ALTER TABLE orders.order_items ADD COLUMN variant_id text;

ALTER TABLE orders.orders
    ADD COLUMN coupon jsonb,
    ADD COLUMN carrier text,
    ADD COLUMN tracking_number text,
    ADD COLUMN completed_at timestamptz,
    ADD COLUMN cancelled_at timestamptz;

-- How often each user holds a coupon on a live order (per-user limits);
-- placing an order takes a use in its transaction, cancelling gives it back.
CREATE TABLE orders.coupon_uses (
    code    text NOT NULL,
    user_id text NOT NULL,
    uses    integer NOT NULL CHECK (uses >= 0),
    PRIMARY KEY (code, user_id)
);
