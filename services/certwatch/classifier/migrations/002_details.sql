-- The processor's last observation per domain (addresses, chains by fingerprint, leaf
-- identities): compared with each probe, in the processor's own transaction, so chain and
-- ownership events are appended once per change.
CREATE TABLE classifier_observations (
    domain_id   uuid        PRIMARY KEY,
    observed_at timestamptz NOT NULL,
    state       jsonb       NOT NULL
);

-- Monitoring details: a projection of domain lifecycle, DomainClassified and
-- CertificateChainObserved events.
CREATE TABLE classifier_details (
    domain_id         uuid        PRIMARY KEY,
    account_id        uuid        NOT NULL,
    host              text        NOT NULL,
    port              integer     NOT NULL,
    contact_ids       text[]      NOT NULL DEFAULT '{}',
    enabled           boolean     NOT NULL DEFAULT false,
    generation        integer     NOT NULL DEFAULT 0,
    period_start      date,
    service_ends_on   date,
    status            text        NOT NULL DEFAULT 'NOT_ENABLED',
    classified        jsonb,       -- the latest DomainClassified data of the current generation
    serving           jsonb,       -- address -> chain fingerprints, leaf first
    chain_observed_at timestamptz
);

-- Certificates by fingerprint, shared by every domain that serves them (intermediates are
-- stored once); reached only through an account-scoped classifier_details row.
CREATE TABLE classifier_certificates (
    sha256 text  PRIMARY KEY,
    facts  jsonb NOT NULL
);

-- "Domain Name Update": one row per OwnershipChanged event.
CREATE TABLE classifier_ownership_changes (
    position    bigint      PRIMARY KEY,
    domain_id   uuid        NOT NULL,
    account_id  uuid        NOT NULL,
    observed_at timestamptz NOT NULL,
    kinds       text[]      NOT NULL,
    changes     jsonb       NOT NULL
);
CREATE INDEX classifier_ownership_changes_domain
    ON classifier_ownership_changes (domain_id, position);
