-- Back to rendered bodies only. Emails still waiting as a context cannot be
-- rendered by SQL; they are dropped, and their rounds' members miss them.
DELETE FROM deliveries WHERE context_json IS NOT NULL AND status IN ('pending', 'sending');
UPDATE deliveries SET subject = COALESCE(subject, ''), text_body = COALESCE(text_body, ''),
    html_body = COALESCE(html_body, '') WHERE context_json IS NOT NULL;
ALTER TABLE deliveries DROP CONSTRAINT deliveries_content_check;
ALTER TABLE deliveries ALTER COLUMN subject SET NOT NULL;
ALTER TABLE deliveries ALTER COLUMN text_body SET NOT NULL;
ALTER TABLE deliveries ALTER COLUMN html_body SET NOT NULL;
ALTER TABLE deliveries DROP COLUMN context_json;
