-- When a scheduler was running: each row is a stretch of passes, none more
-- than a few intervals after the one before. A slot that fell inside a
-- stretch was found due when it came, however long its round then waited
-- behind other circles'; a slot in a gap between stretches was missed
-- while no server ran, and the catch-up rule applies to it alone.
CREATE TABLE scheduler_uptime (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    started_at TIMESTAMP NOT NULL,
    last_seen_at TIMESTAMP NOT NULL
);
CREATE INDEX scheduler_uptime_last_seen_at_idx ON scheduler_uptime (last_seen_at);
-- Why a round opened more than a minute after its slot: 'busy' (it waited
-- behind other circles' rounds due then) or 'downtime' (no scheduler was
-- running at its time). Empty for a round that opened on time.
ALTER TABLE rounds ADD COLUMN late_because TEXT
    CONSTRAINT rounds_late_because_check CHECK (late_because IN ('busy', 'downtime'));
-- Slots of a circle that got no round, for its page: the first and last of
-- a run of them, how many, and why: 'downtime' (missed while no scheduler
-- ran, and too old to open late) or 'superseded' (a later slot was due by
-- the time the scheduler got to it).
CREATE TABLE skipped_rounds (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    circle_id BIGINT NOT NULL REFERENCES circles (id) ON DELETE CASCADE,
    first_slot TEXT NOT NULL,
    last_slot TEXT NOT NULL,
    count INTEGER NOT NULL
        CONSTRAINT skipped_rounds_count_check CHECK (count >= 1),
    because TEXT NOT NULL
        CONSTRAINT skipped_rounds_because_check CHECK (because IN ('downtime', 'superseded')),
    recorded_at TIMESTAMP NOT NULL
);
CREATE INDEX skipped_rounds_circle_id_recorded_at_idx ON skipped_rounds (circle_id, recorded_at);
