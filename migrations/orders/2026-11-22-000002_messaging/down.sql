DROP TABLE orders.payment_requests;
DROP TABLE orders.inbox;
DROP TRIGGER events_notify ON orders.events;
DROP FUNCTION orders.notify_events();
