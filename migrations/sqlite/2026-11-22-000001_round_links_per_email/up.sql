-- Every email that carries a round link gets a link of its own (the
-- check-in, then the reminder), and only hashes are stored, so a member can
-- hold several links to one round. They all stop working when it closes.
DROP INDEX round_links_round_id_membership_id_key;
CREATE INDEX round_links_round_id_membership_id_idx ON round_links (round_id, membership_id);
