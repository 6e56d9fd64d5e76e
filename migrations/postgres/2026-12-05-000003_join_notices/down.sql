ALTER TABLE memberships DROP COLUMN join_notices;
