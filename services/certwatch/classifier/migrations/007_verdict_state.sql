-- Issue 10 B: probes arrive as observations, and a verdict is appended only when it changes.
-- The last verdict per domain (a digest of what makes two verdicts the same, and how many
-- probes in a row gave it) is compared with each new probe; written by the observation
-- consumer in the transaction that appends the change, updated in place every probe.
CREATE TABLE classifier_verdicts (
    domain_id   uuid        PRIMARY KEY,
    checked_at  timestamptz NOT NULL,
    generation  integer     NOT NULL,
    verdict_key bytea       NOT NULL,
    streak      integer     NOT NULL
) WITH (fillfactor = 70);

-- Chains now come by reference from the platform's store (`certificates`, which classifier
-- migration 006 filled from this table): nothing reads this one any more.
DROP TABLE classifier_chain_certs;
