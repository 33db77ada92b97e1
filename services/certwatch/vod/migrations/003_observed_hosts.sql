-- What each monitored host serves, from the classifier's CertificateChainObserved events
-- (replaces vod_cert_facts, which held only the verdict's summary: no certificate names, no
-- issuer organisation). `serving`: address -> fingerprints, leaf first.
DROP TABLE vod_cert_facts;
DELETE FROM checkpoints WHERE name = 'vod.cert_facts';

CREATE TABLE vod_observed_hosts (
    domain_id   uuid        PRIMARY KEY,
    account_id  uuid        NOT NULL,
    host        text        NOT NULL,
    port        integer     NOT NULL,
    serving     jsonb,
    observed_at timestamptz
);
CREATE INDEX vod_observed_hosts_host ON vod_observed_hosts (account_id, host);

-- Certificate facts (rules.facts.CertFacts JSON) by SHA-256, as the events carry them.
CREATE TABLE vod_certificates (
    sha256 text  PRIMARY KEY,
    facts  jsonb NOT NULL
);
