ALTER TABLE orders.orders DROP COLUMN shipping_fee_minor, DROP COLUMN tax_rate_bp;
