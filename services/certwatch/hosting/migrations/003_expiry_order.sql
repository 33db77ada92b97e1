-- The endpoints in expiry order: the soonest-expiring ones (the per-domain gauge's few series)
-- and the 30-day buckets read from the front of this index instead of the whole table.
CREATE INDEX hosting_observed_expiry_valid_to ON hosting_observed_expiry (valid_to);
