-- Back to one link per member and round: keep the newest of each.
DELETE FROM round_links
WHERE id NOT IN (SELECT MAX(id) FROM round_links GROUP BY round_id, membership_id);
DROP INDEX round_links_round_id_membership_id_idx;
CREATE UNIQUE INDEX round_links_round_id_membership_id_key ON round_links (round_id, membership_id);
