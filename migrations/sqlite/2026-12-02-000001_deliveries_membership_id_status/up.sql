-- The facilitator's circle page lists the circle's failed and suppressed
-- emails. By membership alone that meant reading every email the circle
-- was ever sent to find the few that failed, on every view; with the status
-- in the index only the failures are read. The index by membership alone
-- is its prefix, and goes.
CREATE INDEX deliveries_membership_id_status_idx ON deliveries (membership_id, status);
DROP INDEX deliveries_membership_id_idx;
