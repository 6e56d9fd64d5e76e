-- When a member's check-in email arrives: empty for "when the round
-- opens", else the hour as HH:MM in the person's own zone (the circle's
-- when they have none).
ALTER TABLE memberships ADD COLUMN check_in_at TEXT;
-- The hash of a person's calendar feed key; empty until they ask for one.
ALTER TABLE people ADD COLUMN calendar_key_hash TEXT;
CREATE UNIQUE INDEX people_calendar_key_hash ON people (calendar_key_hash);
-- Raised whenever the times of a circle's rounds may change (settings,
-- pause, resume), so that calendars take the new times as an update.
ALTER TABLE circles ADD COLUMN schedule_version INTEGER NOT NULL DEFAULT 0;
