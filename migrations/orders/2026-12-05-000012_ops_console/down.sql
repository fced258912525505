DROP TABLE orders.ops_audit;
DROP TABLE orders.dead_letters;
