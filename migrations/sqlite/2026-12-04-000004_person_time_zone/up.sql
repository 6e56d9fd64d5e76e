-- The time zone a person reads times in; empty until they choose one
-- (pages then show the circle's zone alone). Legacy names are kept as
-- given: they still name a zone.
ALTER TABLE people ADD COLUMN time_zone TEXT;
