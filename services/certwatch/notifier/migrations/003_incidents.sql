-- What the notifier knows of each domain: where it is, who to tell, which alerting conditions
-- it is in (its incident memory). A projection: rebuilt from the log.
CREATE TABLE notifier_domains (
    domain_id             uuid        PRIMARY KEY,
    account_id            uuid        NOT NULL,
    host                  text        NOT NULL,
    port                  integer     NOT NULL,
    contact_ids           text[]      NOT NULL DEFAULT '{}',
    memory                jsonb       NOT NULL DEFAULT '{}',
    problem               jsonb,      -- the current problem as a digest line; NULL while SECURE
    checked_at            timestamptz, -- of the last verdict folded in
    classified            jsonb,       -- that verdict (DomainClassified), folded in again as days pass
    alerted_in            text,        -- the log transaction of the last verdict that alerted
    service_ends_on       date
);
CREATE INDEX notifier_domains_account ON notifier_domains (account_id);

-- What users set per domain (rules over the account's, mute, acknowledgement): kept across rebuilds.
CREATE TABLE notifier_domain_settings (
    domain_id             uuid        PRIMARY KEY,
    account_id            uuid        NOT NULL,
    rules                 jsonb       NOT NULL DEFAULT '{}',
    muted_until           timestamptz,
    acknowledged_incident integer
);

-- Contacts as the inventory appended them: ciphertext only, opened when sending.
CREATE TABLE notifier_contacts (
    contact_id uuid PRIMARY KEY,
    account_id uuid NOT NULL,
    sealed     text NOT NULL
);

-- Facts of the certificates domains served (by fingerprint, immutable): the alert text names them.
CREATE TABLE notifier_certificates (
    sha256    text        PRIMARY KEY,
    subject   text        NOT NULL,
    issuer    text        NOT NULL,
    not_after timestamptz NOT NULL
);

-- Per-account settings: rules, quiet hours and the digest hour, in the account's time zone.
CREATE TABLE notifier_accounts (
    account_id  uuid PRIMARY KEY,
    tz          text NOT NULL DEFAULT 'UTC',
    digest_at   time NOT NULL DEFAULT '09:00',
    quiet_start time,
    quiet_end   time,
    rules       jsonb NOT NULL DEFAULT '{}'
);

-- A delivery is queued (with its rendered message) in the transaction that decided it, then
-- claimed under a lease: 'pending' until `lease_until` means someone is sending it right now.
ALTER TABLE notifier_deliveries
    ADD COLUMN account_id  text,
    ADD COLUMN message     jsonb,
    ADD COLUMN lease_until timestamptz,
    DROP CONSTRAINT notifier_deliveries_state_check,
    ADD CONSTRAINT notifier_deliveries_state_check
        CHECK (state IN ('queued', 'pending', 'sent', 'retrying', 'failed'));
CREATE INDEX notifier_deliveries_ready ON notifier_deliveries (next_attempt_at)
    WHERE state IN ('queued', 'retrying');
CREATE INDEX notifier_deliveries_leased ON notifier_deliveries (lease_until) WHERE state = 'pending';

-- Which account's digest of which local day has been queued: the claim that makes replicas
-- (and the scheduler after `alerts digest --now`) queue each day's digest once.
CREATE TABLE notifier_digest_runs (
    account_id uuid NOT NULL,
    day        date NOT NULL,
    queued_at  timestamptz NOT NULL,
    PRIMARY KEY (account_id, day)
);
