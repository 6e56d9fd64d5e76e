CREATE INDEX deliveries_membership_id_idx ON deliveries (membership_id);
DROP INDEX deliveries_membership_id_status_idx;
