-- Shoulder, version 1 data model (PostgreSQL).
--
-- migrations/sqlite/2026-11-21-000001_initial/up.sql holds the same tables,
-- columns (in the same order), unique indexes and checks; src/db/schema.rs
-- describes both. Change all three together.
--
-- Timestamps are TIMESTAMP without time zone and always hold UTC. They have no
-- defaults: every "now" comes from the application's clock, which tests fix.
-- Every token column stores a SHA-256 hex digest, never the token itself.
-- Unique keys are named CREATE UNIQUE INDEX <table>_<columns>_key statements.

CREATE TABLE people (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    -- normalised to lower case before it is written
    email TEXT NOT NULL,
    display_name TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL,
    -- set when the person deleted their data; the row stays, anonymised, so
    -- what the circle saw keeps its shape
    deleted_at TIMESTAMP
);
CREATE UNIQUE INDEX people_email_key ON people (email);

CREATE TABLE circles (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name TEXT NOT NULL,
    purpose TEXT NOT NULL,
    agreements TEXT NOT NULL,
    cadence TEXT NOT NULL,
    time_zone TEXT NOT NULL,
    round_length_minutes INTEGER NOT NULL
        CONSTRAINT circles_round_length_minutes_check CHECK (round_length_minutes > 0),
    size_cap INTEGER NOT NULL DEFAULT 8
        CONSTRAINT circles_size_cap_check CHECK (size_cap BETWEEN 3 AND 12),
    deck TEXT NOT NULL,
    status TEXT NOT NULL DEFAULT 'active'
        CONSTRAINT circles_status_check CHECK (status IN ('active', 'paused', 'archived')),
    paused_reason TEXT,
    -- the schedule lives here, in UTC; NULL while nothing is due
    next_round_at TIMESTAMP,
    -- a deck prompt id or a circle_prompts.prompt_key, so no foreign key
    pinned_prompt_id TEXT,
    invite_token_hash TEXT,
    invite_expires_at TIMESTAMP,
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL
);
CREATE UNIQUE INDEX circles_invite_token_hash_key ON circles (invite_token_hash);
CREATE INDEX circles_status_next_round_at_idx ON circles (status, next_round_at);

CREATE TABLE memberships (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    circle_id BIGINT NOT NULL REFERENCES circles (id) ON DELETE CASCADE,
    person_id BIGINT NOT NULL REFERENCES people (id) ON DELETE CASCADE,
    role TEXT NOT NULL DEFAULT 'member'
        CONSTRAINT memberships_role_check CHECK (role IN ('facilitator', 'member')),
    status TEXT NOT NULL DEFAULT 'active'
        CONSTRAINT memberships_status_check CHECK (status IN ('active', 'left', 'removed')),
    muted BOOLEAN NOT NULL DEFAULT FALSE,
    unsubscribe_token_hash TEXT NOT NULL,
    joined_at TIMESTAMP NOT NULL,
    left_at TIMESTAMP
);
CREATE UNIQUE INDEX memberships_circle_id_person_id_key ON memberships (circle_id, person_id);
CREATE UNIQUE INDEX memberships_unsubscribe_token_hash_key ON memberships (unsubscribe_token_hash);
CREATE INDEX memberships_person_id_idx ON memberships (person_id);

CREATE TABLE invites (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    circle_id BIGINT NOT NULL REFERENCES circles (id) ON DELETE CASCADE,
    email TEXT NOT NULL,
    token_hash TEXT NOT NULL,
    invited_by BIGINT NOT NULL REFERENCES people (id) ON DELETE CASCADE,
    created_at TIMESTAMP NOT NULL,
    expires_at TIMESTAMP NOT NULL,
    used_at TIMESTAMP,
    revoked_at TIMESTAMP
);
CREATE UNIQUE INDEX invites_token_hash_key ON invites (token_hash);
CREATE INDEX invites_circle_id_idx ON invites (circle_id);
CREATE INDEX invites_invited_by_idx ON invites (invited_by);

CREATE TABLE sign_in_tokens (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    email TEXT NOT NULL,
    -- NULL when the address has no account yet (a first sign-in or a join)
    person_id BIGINT REFERENCES people (id) ON DELETE CASCADE,
    token_hash TEXT NOT NULL,
    purpose TEXT NOT NULL
        CONSTRAINT sign_in_tokens_purpose_check CHECK (purpose IN ('sign_in', 'join')),
    payload TEXT,
    redirect_to TEXT,
    created_at TIMESTAMP NOT NULL,
    expires_at TIMESTAMP NOT NULL,
    used_at TIMESTAMP
);
CREATE UNIQUE INDEX sign_in_tokens_token_hash_key ON sign_in_tokens (token_hash);
CREATE INDEX sign_in_tokens_person_id_idx ON sign_in_tokens (person_id);

CREATE TABLE sessions (
    -- SHA-256 hex of the cookie's session id: a leaked table opens no session
    id_hash TEXT NOT NULL PRIMARY KEY,
    person_id BIGINT NOT NULL REFERENCES people (id) ON DELETE CASCADE,
    created_at TIMESTAMP NOT NULL,
    expires_at TIMESTAMP NOT NULL,
    last_seen_at TIMESTAMP NOT NULL
);
CREATE INDEX sessions_person_id_idx ON sessions (person_id);

CREATE TABLE rounds (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    circle_id BIGINT NOT NULL REFERENCES circles (id) ON DELETE CASCADE,
    number INTEGER NOT NULL
        CONSTRAINT rounds_number_check CHECK (number >= 1),
    -- the intended occurrence as a local date-time in the circle's zone, e.g.
    -- '2027-03-14T02:30'. A UTC instant would not do: a slot in a DST gap
    -- moves, and one in a fold has two instants, yet it must open one round.
    slot TEXT NOT NULL,
    prompt_id TEXT NOT NULL,
    -- copied from the deck so that editing the deck never rewrites history
    prompt_question TEXT NOT NULL,
    prompt_follow_up TEXT,
    opened_at TIMESTAMP NOT NULL,
    reminder_at TIMESTAMP NOT NULL,
    closes_at TIMESTAMP NOT NULL,
    reminded_at TIMESTAMP,
    closed_at TIMESTAMP
);
CREATE UNIQUE INDEX rounds_circle_id_slot_key ON rounds (circle_id, slot);
CREATE UNIQUE INDEX rounds_circle_id_number_key ON rounds (circle_id, number);
-- the scheduler's "what is due" queries; IS NULL (not a bound value) so that
-- SQLite's planner can use the partial index too
CREATE INDEX rounds_reminder_at_idx ON rounds (reminder_at) WHERE reminded_at IS NULL;
CREATE INDEX rounds_closes_at_idx ON rounds (closes_at) WHERE closed_at IS NULL;

CREATE TABLE round_links (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    round_id BIGINT NOT NULL REFERENCES rounds (id) ON DELETE CASCADE,
    membership_id BIGINT NOT NULL REFERENCES memberships (id) ON DELETE CASCADE,
    token_hash TEXT NOT NULL
);
CREATE UNIQUE INDEX round_links_round_id_membership_id_key ON round_links (round_id, membership_id);
CREATE UNIQUE INDEX round_links_token_hash_key ON round_links (token_hash);
CREATE INDEX round_links_membership_id_idx ON round_links (membership_id);

CREATE TABLE check_ins (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    round_id BIGINT NOT NULL REFERENCES rounds (id) ON DELETE CASCADE,
    membership_id BIGINT NOT NULL REFERENCES memberships (id) ON DELETE CASCADE,
    reflection TEXT NOT NULL,
    late BOOLEAN NOT NULL DEFAULT FALSE,
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL
);
CREATE UNIQUE INDEX check_ins_round_id_membership_id_key ON check_ins (round_id, membership_id);
CREATE INDEX check_ins_membership_id_idx ON check_ins (membership_id);

CREATE TABLE round_skips (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    round_id BIGINT NOT NULL REFERENCES rounds (id) ON DELETE CASCADE,
    membership_id BIGINT NOT NULL REFERENCES memberships (id) ON DELETE CASCADE,
    created_at TIMESTAMP NOT NULL
);
CREATE UNIQUE INDEX round_skips_round_id_membership_id_key ON round_skips (round_id, membership_id);
CREATE INDEX round_skips_membership_id_idx ON round_skips (membership_id);

CREATE TABLE away_periods (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    membership_id BIGINT NOT NULL REFERENCES memberships (id) ON DELETE CASCADE,
    -- both days inclusive, in the circle's zone
    starts_on DATE NOT NULL,
    ends_on DATE NOT NULL,
    created_at TIMESTAMP NOT NULL,
    CONSTRAINT away_periods_range_check CHECK (ends_on >= starts_on)
);
CREATE INDEX away_periods_membership_id_idx ON away_periods (membership_id);

CREATE TABLE commitments (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    membership_id BIGINT NOT NULL REFERENCES memberships (id) ON DELETE CASCADE,
    -- the round in which the commitment was made
    round_id BIGINT NOT NULL REFERENCES rounds (id) ON DELETE CASCADE,
    position INTEGER NOT NULL
        CONSTRAINT commitments_position_check CHECK (position BETWEEN 1 AND 3),
    body TEXT NOT NULL,
    status TEXT NOT NULL DEFAULT 'open'
        CONSTRAINT commitments_status_check
        CHECK (status IN ('open', 'done', 'partly', 'not_yet', 'released')),
    help_wanted BOOLEAN NOT NULL DEFAULT FALSE,
    created_at TIMESTAMP NOT NULL,
    closed_at TIMESTAMP
);
CREATE UNIQUE INDEX commitments_round_id_membership_id_position_key
    ON commitments (round_id, membership_id, position);
CREATE INDEX commitments_membership_id_status_idx ON commitments (membership_id, status);

CREATE TABLE follow_throughs (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    commitment_id BIGINT NOT NULL REFERENCES commitments (id) ON DELETE CASCADE,
    -- the round in which the outcome was reported
    round_id BIGINT NOT NULL REFERENCES rounds (id) ON DELETE CASCADE,
    outcome TEXT NOT NULL
        CONSTRAINT follow_throughs_outcome_check
        CHECK (outcome IN ('done', 'partly', 'not_yet', 'released')),
    note TEXT,
    recorded_at TIMESTAMP NOT NULL
);
CREATE UNIQUE INDEX follow_throughs_commitment_id_round_id_key
    ON follow_throughs (commitment_id, round_id);
CREATE INDEX follow_throughs_round_id_idx ON follow_throughs (round_id);

CREATE TABLE action_tokens (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    token_hash TEXT NOT NULL,
    kind TEXT NOT NULL,
    membership_id BIGINT NOT NULL REFERENCES memberships (id) ON DELETE CASCADE,
    round_id BIGINT REFERENCES rounds (id) ON DELETE CASCADE,
    commitment_id BIGINT REFERENCES commitments (id) ON DELETE CASCADE,
    choice TEXT,
    expires_at TIMESTAMP NOT NULL,
    used_at TIMESTAMP
);
CREATE UNIQUE INDEX action_tokens_token_hash_key ON action_tokens (token_hash);
CREATE INDEX action_tokens_membership_id_idx ON action_tokens (membership_id);
CREATE INDEX action_tokens_commitment_id_idx ON action_tokens (commitment_id);

CREATE TABLE pairings (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    round_id BIGINT NOT NULL REFERENCES rounds (id) ON DELETE CASCADE,
    giver_membership_id BIGINT NOT NULL REFERENCES memberships (id) ON DELETE CASCADE,
    receiver_membership_id BIGINT NOT NULL REFERENCES memberships (id) ON DELETE CASCADE,
    CONSTRAINT pairings_distinct_check CHECK (giver_membership_id <> receiver_membership_id)
);
CREATE UNIQUE INDEX pairings_round_id_giver_membership_id_key
    ON pairings (round_id, giver_membership_id);
CREATE INDEX pairings_giver_membership_id_idx ON pairings (giver_membership_id);
CREATE INDEX pairings_receiver_membership_id_idx ON pairings (receiver_membership_id);

CREATE TABLE support_messages (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    commitment_id BIGINT NOT NULL REFERENCES commitments (id) ON DELETE CASCADE,
    author_membership_id BIGINT NOT NULL REFERENCES memberships (id) ON DELETE CASCADE,
    round_id BIGINT REFERENCES rounds (id) ON DELETE SET NULL,
    body TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL
);
CREATE INDEX support_messages_commitment_id_idx ON support_messages (commitment_id);
CREATE INDEX support_messages_author_membership_id_idx ON support_messages (author_membership_id);
CREATE INDEX support_messages_round_id_idx ON support_messages (round_id);

CREATE TABLE circle_prompts (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    circle_id BIGINT NOT NULL REFERENCES circles (id) ON DELETE CASCADE,
    prompt_key TEXT NOT NULL,
    theme TEXT NOT NULL,
    question TEXT NOT NULL,
    follow_up TEXT,
    created_at TIMESTAMP NOT NULL
);
CREATE UNIQUE INDEX circle_prompts_circle_id_prompt_key_key ON circle_prompts (circle_id, prompt_key);

CREATE TABLE prompt_usage (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    circle_id BIGINT NOT NULL REFERENCES circles (id) ON DELETE CASCADE,
    -- a deck prompt id, or own:<circle_prompts.prompt_key>; once the deck is
    -- used up, the least recently used prompt comes round again
    prompt_id TEXT NOT NULL,
    round_id BIGINT NOT NULL REFERENCES rounds (id) ON DELETE CASCADE,
    used_at TIMESTAMP NOT NULL
);
CREATE UNIQUE INDEX prompt_usage_circle_id_prompt_id_key ON prompt_usage (circle_id, prompt_id);
CREATE INDEX prompt_usage_round_id_idx ON prompt_usage (round_id);

-- The email outbox: rows are written in the transaction that causes the mail.
CREATE TABLE deliveries (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    round_id BIGINT REFERENCES rounds (id) ON DELETE CASCADE,
    membership_id BIGINT REFERENCES memberships (id) ON DELETE CASCADE,
    kind TEXT NOT NULL,
    to_address TEXT NOT NULL,
    subject TEXT NOT NULL,
    text_body TEXT NOT NULL,
    html_body TEXT NOT NULL,
    -- extra headers as a JSON object, e.g. List-Unsubscribe
    headers_json TEXT,
    status TEXT NOT NULL DEFAULT 'pending'
        CONSTRAINT deliveries_status_check
        CHECK (status IN ('pending', 'sending', 'sent', 'failed', 'suppressed')),
    attempts INTEGER NOT NULL DEFAULT 0
        CONSTRAINT deliveries_attempts_check CHECK (attempts >= 0),
    next_attempt_at TIMESTAMP NOT NULL,
    -- a worker's claim: "sent"/"failed" updates match on id and claim_token,
    -- and a claim whose lease_until has passed may be taken over
    claim_token TEXT,
    lease_until TIMESTAMP,
    last_error TEXT,
    message_id TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL,
    sent_at TIMESTAMP
);
-- One delivery per member per round per kind. Mail outside a round (sign-in,
-- invite) has NULL round_id or membership_id, and both backends treat NULLs as
-- distinct here, so such rows never collide with each other.
CREATE UNIQUE INDEX deliveries_round_id_membership_id_kind_key
    ON deliveries (round_id, membership_id, kind);
CREATE UNIQUE INDEX deliveries_message_id_key ON deliveries (message_id);
CREATE INDEX deliveries_status_next_attempt_at_idx ON deliveries (status, next_attempt_at);
CREATE INDEX deliveries_membership_id_idx ON deliveries (membership_id);

CREATE TABLE suppressed_addresses (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    email TEXT NOT NULL,
    reason TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL
);
CREATE UNIQUE INDEX suppressed_addresses_email_key ON suppressed_addresses (email);

-- Request counters live in the database so that a limit holds across every
-- instance behind the same database.
CREATE TABLE rate_limits (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    bucket TEXT NOT NULL,
    window_start TIMESTAMP NOT NULL,
    count INTEGER NOT NULL DEFAULT 0
        CONSTRAINT rate_limits_count_check CHECK (count >= 0)
);
CREATE UNIQUE INDEX rate_limits_bucket_window_start_key ON rate_limits (bucket, window_start);
