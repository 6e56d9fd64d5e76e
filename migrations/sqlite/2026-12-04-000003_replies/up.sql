-- The key in a round email's Reply-To, when replying by email is on: its
-- time prefix and SHA-256, as for the round link's own key. Empty for
-- emails without one.
ALTER TABLE round_links ADD COLUMN reply_token_hash TEXT;
CREATE UNIQUE INDEX round_links_reply_token_hash_key ON round_links (reply_token_hash);
-- Mail that came back, each message once (by its Message-ID): whose reply
-- it was, about which round, and what became of it ('recorded', 'skipped',
-- 'nothing', 'stranger', 'automatic', 'limited'). No words are kept here.
CREATE TABLE inbound_messages (
    id INTEGER PRIMARY KEY,
    message_id TEXT NOT NULL,
    membership_id BIGINT REFERENCES memberships (id) ON DELETE CASCADE,
    round_id BIGINT REFERENCES rounds (id) ON DELETE CASCADE,
    outcome TEXT NOT NULL,
    received_at TIMESTAMP NOT NULL
);
CREATE UNIQUE INDEX inbound_messages_message_id_key ON inbound_messages (message_id);
CREATE INDEX inbound_messages_membership_id_round_id_idx
    ON inbound_messages (membership_id, round_id, received_at);
