-- What each domain's alert state is (the daily alert digest is built from it).
CREATE TABLE notifier_alert_state (
    domain_id  uuid        PRIMARY KEY,
    account_id uuid        NOT NULL,
    status     text        NOT NULL,
    causes     text[]      NOT NULL DEFAULT '{}',
    since      timestamptz NOT NULL,
    checked_at timestamptz NOT NULL
);
