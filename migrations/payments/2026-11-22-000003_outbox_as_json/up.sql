-- One encoding per event: the outbox keeps the event's data as the JSON text
-- payments wrote (`json`), published as it is.
ALTER TABLE payments.outbox ALTER COLUMN data TYPE json USING data::json;
