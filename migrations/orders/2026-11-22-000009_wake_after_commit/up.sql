-- The relay is woken by the writer after its commit (in process, or by a
-- NOTIFY sent outside the writing transaction), no longer by a trigger: a
-- transaction that notifies takes a cluster-wide lock at commit and holds it
-- across the WAL flush, so every order write queued behind every other.
DROP TRIGGER events_notify ON orders.events;
DROP FUNCTION orders.notify_events();
