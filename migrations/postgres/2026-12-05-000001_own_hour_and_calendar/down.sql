ALTER TABLE circles DROP COLUMN schedule_version;
DROP INDEX people_calendar_key_hash;
ALTER TABLE people DROP COLUMN calendar_key_hash;
ALTER TABLE memberships DROP COLUMN check_in_at;
