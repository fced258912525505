-- The charges an order was placed under (tax rate, shipping fee), so item
-- changes recompute totals on the same terms.
ALTER TABLE orders.orders
    ADD COLUMN tax_rate_bp INTEGER NOT NULL DEFAULT 0 CHECK (tax_rate_bp BETWEEN 0 AND 10000),
    ADD COLUMN shipping_fee_minor BIGINT CHECK (shipping_fee_minor >= 0);
