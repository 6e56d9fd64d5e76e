-- A claim also takes over rows whose lease ran out: status 'sending' and
-- lease_until in the past. Without this index that search read every row
-- being sent (each a few kilobytes, for lease_until) on every claim; with
-- it, the search reads only index entries and stops at the first live lease.
CREATE INDEX deliveries_status_lease_until_idx ON deliveries (status, lease_until);
