-- Whether a facilitator gets a short email when someone joins their
-- circle; on until they turn it off on the circle's page.
ALTER TABLE memberships ADD COLUMN join_notices BOOLEAN NOT NULL DEFAULT TRUE;
