-- A user's orders in one status, newest first, walked by keyset
-- (`GET /api/v1/orders?status=…` for a user): without it the list filtered
-- the user's whole history by status.
CREATE INDEX orders_user_status_created_idx
    ON orders.orders (user_id, status, created_at DESC, id DESC);
