-- Status history as intervals (classifier.status_intervals): one row per stretch of time
-- with one verdict, instead of one per check. Filled from the
-- DomainClassified events already in the log: a projection without a checkpoint replays the
-- whole log when the classifier first starts with it.
CREATE TABLE classifier_status_intervals (
    domain_id     uuid        NOT NULL,
    seq           integer     NOT NULL,  -- 1, 2, ... per domain, in time order
    account_id    uuid        NOT NULL,
    started_at    timestamptz NOT NULL,
    ended_at      timestamptz,           -- NULL: the open (current) interval
    status        text        NOT NULL,
    primary_cause text,
    causes        text[]      NOT NULL DEFAULT '{}',
    PRIMARY KEY (domain_id, seq)
);
