CREATE FUNCTION orders.notify_events() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('orders_outbox', '');
    RETURN NULL;
END
$$;
CREATE TRIGGER events_notify AFTER INSERT ON orders.events
    FOR EACH STATEMENT EXECUTE FUNCTION orders.notify_events();
