-- An email is stored as its template context and rendered when it is sent,
-- rather than as a subject and two bodies rendered when it was queued: the
-- context of a check-in is a few hundred bytes where its two bodies are
-- about 4 KB, and a round for thousands of circles queues tens of thousands
-- of emails at once. Rows queued before this change keep their bodies and
-- are sent as they are.
ALTER TABLE deliveries ADD COLUMN context_json TEXT;
ALTER TABLE deliveries ALTER COLUMN subject DROP NOT NULL;
ALTER TABLE deliveries ALTER COLUMN text_body DROP NOT NULL;
ALTER TABLE deliveries ALTER COLUMN html_body DROP NOT NULL;
ALTER TABLE deliveries ADD CONSTRAINT deliveries_content_check CHECK (
    context_json IS NOT NULL
    OR (subject IS NOT NULL AND text_body IS NOT NULL AND html_body IS NOT NULL)
);
