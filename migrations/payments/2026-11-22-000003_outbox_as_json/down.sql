ALTER TABLE payments.outbox ALTER COLUMN data TYPE jsonb USING data::jsonb;
