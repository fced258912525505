DROP INDEX payments.payments_processing_idx;
DROP TABLE payments.jobs;
