-- Back to rendered bodies only. Emails still waiting as a context cannot be
-- rendered by SQL; they are dropped, and their rounds' members miss them.
DELETE FROM deliveries WHERE context_json IS NOT NULL AND status IN ('pending', 'sending');
CREATE TABLE deliveries_old (
    id INTEGER PRIMARY KEY,
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
    claim_token TEXT,
    lease_until TIMESTAMP,
    last_error TEXT,
    message_id TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL,
    sent_at TIMESTAMP
);
INSERT INTO deliveries_old (id, round_id, membership_id, kind, to_address, subject,
    text_body, html_body, headers_json, status, attempts, next_attempt_at, claim_token,
    lease_until, last_error, message_id, created_at, sent_at)
SELECT id, round_id, membership_id, kind, to_address, COALESCE(subject, ''),
    COALESCE(text_body, ''), COALESCE(html_body, ''), headers_json, status, attempts,
    next_attempt_at, claim_token, lease_until, last_error, message_id, created_at, sent_at
FROM deliveries;
DROP TABLE deliveries;
ALTER TABLE deliveries_old RENAME TO deliveries;
CREATE UNIQUE INDEX deliveries_round_id_membership_id_kind_key
    ON deliveries (round_id, membership_id, kind);
CREATE UNIQUE INDEX deliveries_message_id_key ON deliveries (message_id);
CREATE INDEX deliveries_status_next_attempt_at_idx ON deliveries (status, next_attempt_at);
CREATE INDEX deliveries_membership_id_idx ON deliveries (membership_id);
CREATE INDEX deliveries_status_lease_until_idx ON deliveries (status, lease_until);
