-- Command-side uniqueness: one live domain per account and host:port. Written in the same
-- transaction as the DomainAdded/DomainEdited/DomainRemoved events it mirrors.
CREATE TABLE inventory_claims (
    account_id uuid    NOT NULL,
    host       text    NOT NULL,
    port       integer NOT NULL,
    domain_id  uuid    NOT NULL UNIQUE,
    PRIMARY KEY (account_id, host, port)
);

-- The Status column the console shows: a projection of domain and classifier events.
CREATE TABLE inventory_domains (
    domain_id          uuid        PRIMARY KEY,
    account_id         uuid        NOT NULL,
    host               text        NOT NULL,
    port               integer     NOT NULL,
    enabled            boolean     NOT NULL DEFAULT false,
    generation         integer     NOT NULL DEFAULT 0,
    status             text        NOT NULL DEFAULT 'NOT_ENABLED',
    primary_cause      text,
    causes             text[]      NOT NULL DEFAULT '{}',
    recommended_action text,
    brand              text,
    valid_from         timestamptz,
    valid_to           timestamptz,
    days_left          integer,
    contact_ids        text[]      NOT NULL DEFAULT '{}',
    added_at           timestamptz NOT NULL,
    first_enabled_at   timestamptz,
    period_start       date,
    service_ends_on    date,
    last_checked_at    timestamptz
);
CREATE INDEX inventory_domains_account_host ON inventory_domains (account_id, host, domain_id);
CREATE INDEX inventory_domains_service_end ON inventory_domains (service_ends_on) WHERE enabled;
