ALTER TABLE people DROP COLUMN time_zone;
