-- Current status per domain and its history: projections of DomainClassified.
CREATE TABLE classifier_status (
    domain_id     uuid        PRIMARY KEY,
    account_id    uuid        NOT NULL,
    generation    integer     NOT NULL,
    status        text        NOT NULL,
    primary_cause text,
    causes        text[]      NOT NULL DEFAULT '{}',
    checked_at    timestamptz NOT NULL,
    verdict       jsonb       NOT NULL
);

CREATE TABLE classifier_status_history (
    position      bigint      PRIMARY KEY,
    domain_id     uuid        NOT NULL,
    account_id    uuid        NOT NULL,
    status        text        NOT NULL,
    primary_cause text,
    causes        text[]      NOT NULL DEFAULT '{}',
    checked_at    timestamptz NOT NULL,
    verdict       jsonb       NOT NULL
);
CREATE INDEX classifier_status_history_domain ON classifier_status_history (domain_id, position);
