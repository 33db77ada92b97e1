-- Certificate expiry seen on each monitored endpoint: what renewal decisions start from.
CREATE TABLE hosting_observed_expiry (
    domain_id  uuid        PRIMARY KEY,
    account_id uuid        NOT NULL,
    host       text        NOT NULL,
    port       integer     NOT NULL,
    valid_to   timestamptz,
    brand      text,
    checked_at timestamptz NOT NULL
);
