DROP TABLE skipped_rounds;
ALTER TABLE rounds DROP COLUMN late_because;
DROP TABLE scheduler_uptime;
