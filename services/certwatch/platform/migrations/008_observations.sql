-- Telemetry beside the log (issue 10 B): certificates and chains stored once, by content,
-- and every probe's outcome as rows of a time-partitioned table with a retention.

-- A certificate by the SHA-256 of its DER encoding. `der` is NULL for certificates known
-- only from facts recorded before the DER was kept (see classifier migration 005).
CREATE TABLE certificates (
    sha256      bytea       PRIMARY KEY CHECK (length(sha256) = 32),
    first_seen  timestamptz NOT NULL DEFAULT now(),
    der         bytea,
    facts       jsonb       NOT NULL
);

-- A chain as presented (leaf first), by the SHA-256 of its concatenated fingerprints.
-- `chain_id` is that digest's first 8 bytes as a signed bigint, so any writer names a chain
-- without a round trip; `sha256` keeps the full digest and a 64-bit collision is refused
-- (platform.certificates.put_chains), never silently merged.
CREATE TABLE chains (
    chain_id     bigint  PRIMARY KEY,
    sha256       bytea   NOT NULL UNIQUE CHECK (length(sha256) = 32),
    fingerprints bytea[] NOT NULL CHECK (cardinality(fingerprints) > 0)
);

-- One row per probed address (a probe that resolved nothing: one row, ip NULL). Columns in
-- alignment order, 8-byte first, varlena last, so no padding between them; codes are
-- smallints (platform.observations: STATUSES, CAUSES as a bit mask, PHASES, ...), 0 = none,
-- so a stable domain's row has no NULL and no null bitmap. Partitions are days, made
-- ahead and dropped past the retention by platform.observations.maintain.
CREATE TABLE probe_observations (
    observed_at    timestamptz NOT NULL,
    domain_id      uuid        NOT NULL,
    chain_id       bigint      NOT NULL DEFAULT 0,   -- chains.chain_id; 0: no chain presented
    connect_us     integer,                          -- NULL: not measured
    handshake_us   integer,
    status         smallint    NOT NULL,
    primary_cause  smallint    NOT NULL DEFAULT 0,
    causes         smallint    NOT NULL DEFAULT 0,   -- bit (code - 1) set for each cause
    phase          smallint    NOT NULL,
    error_kind     smallint    NOT NULL DEFAULT 0,
    tls_version    smallint    NOT NULL DEFAULT 0,
    ip             inet,
    detail         text        NOT NULL DEFAULT ''  -- the error text, empty when none
) PARTITION BY RANGE (observed_at);

-- One index: a domain's observations (a day's partition holds at most a few hundred per
-- domain, read in time order after the fetch). Keyed by domain_id alone so B-tree
-- deduplication stores each domain once per leaf page and a row costs about 6 bytes.
CREATE INDEX probe_observations_domain ON probe_observations (domain_id);
