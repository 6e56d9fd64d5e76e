-- Who reads a reflection: the circle's members (shared) or its author
-- alone. Reflections written before anyone was asked stay with their
-- author.
ALTER TABLE check_ins ADD COLUMN shared BOOLEAN NOT NULL DEFAULT FALSE;
-- The audience a member's next reflection in this circle starts from: the
-- last one they chose. New members start with the circle; members who
-- wrote before the choice existed keep "only me" until they choose.
ALTER TABLE memberships ADD COLUMN shares_reflections BOOLEAN NOT NULL DEFAULT TRUE;
UPDATE memberships SET shares_reflections = FALSE;
-- A short word from one member to another during a round, and the one
-- answer its recipient may give.
CREATE TABLE peer_notes (
    id INTEGER PRIMARY KEY,
    round_id BIGINT NOT NULL REFERENCES rounds (id) ON DELETE CASCADE,
    author_membership_id BIGINT NOT NULL REFERENCES memberships (id) ON DELETE CASCADE,
    recipient_membership_id BIGINT NOT NULL REFERENCES memberships (id) ON DELETE CASCADE,
    body TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL,
    answer TEXT,
    answered_at TIMESTAMP,
    CONSTRAINT peer_notes_not_to_oneself_check
        CHECK (author_membership_id <> recipient_membership_id)
);
CREATE INDEX peer_notes_round_id_idx ON peer_notes (round_id);
CREATE INDEX peer_notes_author_membership_id_idx ON peer_notes (author_membership_id);
CREATE INDEX peer_notes_recipient_membership_id_created_at_idx
    ON peer_notes (recipient_membership_id, created_at);
-- The one answer the owner of a commitment may give to support on it.
ALTER TABLE support_messages ADD COLUMN answer TEXT;
ALTER TABLE support_messages ADD COLUMN answered_at TIMESTAMP;
