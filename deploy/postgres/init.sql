-- Roles and schemas of the platform, in database `shop`. Idempotent: run it as
-- a superuser as often as you like (`just up` and the compose file both do).
-- Each service logs in as its own role and owns exactly one schema; neither
-- can touch the other's.
DO $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'orders') THEN
        CREATE ROLE orders LOGIN PASSWORD 'orders';
    END IF;
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'payments') THEN
        CREATE ROLE payments LOGIN PASSWORD 'payments';
    END IF;
END
$$;

CREATE SCHEMA IF NOT EXISTS orders AUTHORIZATION orders;
CREATE SCHEMA IF NOT EXISTS payments AUTHORIZATION payments;
REVOKE ALL ON SCHEMA orders FROM PUBLIC;
REVOKE ALL ON SCHEMA payments FROM PUBLIC;
