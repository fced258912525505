-- Personal data sealed at rest (crypto-shredding, platform::privacy): each
-- user's data key, wrapped by a key-encryption key from the configuration;
-- each event's personal fields (of its payload and of its snapshot) sealed
-- with it in `sealed`, the plain columns holding the rest. The read model
-- keeps no personal field of its own any more (views are the snapshots).
CREATE TABLE orders.data_keys (
    user_id TEXT PRIMARY KEY,
    key_id UUID NOT NULL,
    kek_id TEXT NOT NULL,
    wrapped BYTEA NOT NULL,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX data_keys_kek_idx ON orders.data_keys (kek_id);
ALTER TABLE orders.events ADD COLUMN sealed BYTEA;
ALTER TABLE orders.orders DROP COLUMN notes, DROP COLUMN cancellation_reason;
DROP TABLE orders.order_addresses;
-- Every erasure asked for (DELETE /api/v1/users/{user_id}/personal-data):
-- who asked, when, and whether a data key was destroyed.
CREATE TABLE orders.erasures (
    id BIGSERIAL PRIMARY KEY,
    user_id TEXT NOT NULL,
    operator TEXT NOT NULL,
    key_destroyed BOOLEAN NOT NULL,
    orders INTEGER NOT NULL DEFAULT 0,
    erased_at TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX erasures_user_idx ON orders.erasures (user_id);
