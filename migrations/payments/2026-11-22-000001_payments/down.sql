DROP TABLE payments.cancelled_orders;
DROP TABLE payments.inbox;
DROP TRIGGER outbox_notify ON payments.outbox;
DROP FUNCTION payments.notify_outbox();
DROP TABLE payments.outbox;
DROP TABLE payments.idempotency_keys;
DROP TABLE payments.payments;
