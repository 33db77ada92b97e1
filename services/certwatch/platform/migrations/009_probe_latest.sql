-- When each domain was last observed (platform.observations.write keeps it): "last
-- checked" for every reader now that a probe that changes nothing appends no event, so
-- the time of a domain's last verdict event is the time of its last change, not its last
-- check. One narrow row a domain, updated in place.
CREATE TABLE probe_latest (
    domain_id   uuid        PRIMARY KEY,
    observed_at timestamptz NOT NULL
) WITH (fillfactor = 70);
