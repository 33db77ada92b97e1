-- Every delivery attempt's record, keyed by the idempotency key and written BEFORE sending, so a
-- redelivered event, a restart or a second replica finds the key taken and sends nothing twice.
CREATE TABLE notifier_deliveries (
    key             text        PRIMARY KEY,  -- rules.Key.digest(): event, domain, contact, channel, incident
    event           text        NOT NULL,
    domain_id       text        NOT NULL,     -- '*' for a digest
    contact_id      text        NOT NULL,
    channel         text        NOT NULL,
    incident        text        NOT NULL,
    state           text        NOT NULL CHECK (state IN ('pending', 'sent', 'retrying', 'failed')),
    attempts        integer     NOT NULL DEFAULT 0,
    next_attempt_at timestamptz,
    detail          text        NOT NULL DEFAULT '',
    created_at      timestamptz NOT NULL,
    updated_at      timestamptz NOT NULL
);
CREATE INDEX notifier_deliveries_domain ON notifier_deliveries (domain_id, created_at);
CREATE INDEX notifier_deliveries_contact ON notifier_deliveries (contact_id, created_at);
CREATE INDEX notifier_deliveries_due ON notifier_deliveries (next_attempt_at) WHERE state = 'retrying';
