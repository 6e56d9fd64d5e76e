-- An email is stored as its template context and rendered when it is sent,
-- rather than as a subject and two bodies rendered when it was queued: the
-- context of a check-in is a few hundred bytes where its two bodies are
-- about 4 KB, and a round for thousands of circles queues tens of thousands
-- of emails at once. Rows queued before this change keep their bodies and
-- are sent as they are. SQLite cannot drop NOT NULL in place, so the table
-- is built again with the same rows and indexes.
CREATE TABLE deliveries_new (
    id INTEGER PRIMARY KEY,
    round_id BIGINT REFERENCES rounds (id) ON DELETE CASCADE,
    membership_id BIGINT REFERENCES memberships (id) ON DELETE CASCADE,
    kind TEXT NOT NULL,
    to_address TEXT NOT NULL,
    -- only in rows queued before context_json existed
    subject TEXT,
    text_body TEXT,
    html_body TEXT,
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
    sent_at TIMESTAMP,
    -- the template context as JSON, rendered with the templates of `kind`
    -- when the email is sent
    context_json TEXT,
    CONSTRAINT deliveries_content_check CHECK (
        context_json IS NOT NULL
        OR (subject IS NOT NULL AND text_body IS NOT NULL AND html_body IS NOT NULL)
    )
);
INSERT INTO deliveries_new (id, round_id, membership_id, kind, to_address, subject,
    text_body, html_body, headers_json, status, attempts, next_attempt_at, claim_token,
    lease_until, last_error, message_id, created_at, sent_at)
SELECT id, round_id, membership_id, kind, to_address, subject, text_body, html_body,
    headers_json, status, attempts, next_attempt_at, claim_token, lease_until,
    last_error, message_id, created_at, sent_at
FROM deliveries;
DROP TABLE deliveries;
ALTER TABLE deliveries_new RENAME TO deliveries;
CREATE UNIQUE INDEX deliveries_round_id_membership_id_kind_key
    ON deliveries (round_id, membership_id, kind);
CREATE UNIQUE INDEX deliveries_message_id_key ON deliveries (message_id);
CREATE INDEX deliveries_status_next_attempt_at_idx ON deliveries (status, next_attempt_at);
CREATE INDEX deliveries_membership_id_idx ON deliveries (membership_id);
CREATE INDEX deliveries_status_lease_until_idx ON deliveries (status, lease_until);
