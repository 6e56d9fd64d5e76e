ALTER TABLE support_messages DROP COLUMN answered_at;
ALTER TABLE support_messages DROP COLUMN answer;
DROP TABLE peer_notes;
ALTER TABLE memberships DROP COLUMN shares_reflections;
ALTER TABLE check_ins DROP COLUMN shared;
