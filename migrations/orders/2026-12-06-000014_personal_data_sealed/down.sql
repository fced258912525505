DROP TABLE orders.erasures;
ALTER TABLE orders.events DROP COLUMN sealed;
DROP TABLE orders.data_keys;
ALTER TABLE orders.orders ADD COLUMN notes TEXT, ADD COLUMN cancellation_reason TEXT;
CREATE TABLE orders.order_addresses (
    order_id UUID NOT NULL REFERENCES orders.orders (id) ON DELETE CASCADE,
    kind TEXT NOT NULL,
    first_name TEXT NOT NULL,
    last_name TEXT NOT NULL,
    line1 TEXT NOT NULL,
    line2 TEXT,
    city TEXT NOT NULL,
    region TEXT,
    postal_code TEXT NOT NULL,
    country TEXT NOT NULL,
    phone TEXT,
    email TEXT,
    PRIMARY KEY (order_id, kind)
);
