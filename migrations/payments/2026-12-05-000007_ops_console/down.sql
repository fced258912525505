DROP INDEX payments.outbox_subject_idx;
DROP TABLE payments.ops_audit;
DROP TABLE payments.dead_letters;
