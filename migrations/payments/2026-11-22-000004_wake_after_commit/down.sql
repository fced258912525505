CREATE FUNCTION payments.notify_outbox() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('payments_outbox', '');
    RETURN NULL;
END
$$;
CREATE TRIGGER outbox_notify AFTER INSERT ON payments.outbox
    FOR EACH STATEMENT EXECUTE FUNCTION payments.notify_outbox();
