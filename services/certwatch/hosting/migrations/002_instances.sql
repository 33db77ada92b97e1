-- Hosted certificate instances and certificates: rows derived from the `hosting-*` and
-- `hosting_cert-*` streams, written in the transaction that appends the events (the log is
-- the truth; these answer listing and "what is due" without replaying every stream).
CREATE TABLE hosting_instances (
    instance_id     uuid        PRIMARY KEY,
    account_id      uuid        NOT NULL,
    subscription_id uuid        NOT NULL,
    year            integer     NOT NULL,
    years           integer     NOT NULL,
    state           text        NOT NULL,
    version         integer     NOT NULL,
    due_at          timestamptz,            -- when the orchestrator has something to do
    certificate_id  uuid,                   -- the current certificate
    renew_at        timestamptz,            -- the current certificate's next renewal
    created_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX hosting_instances_account ON hosting_instances (account_id, subscription_id, year);
CREATE INDEX hosting_instances_due ON hosting_instances (due_at) WHERE due_at IS NOT NULL;

-- Every certificate, issued here or uploaded; the private key is sealed under its own data key
-- (subject 'hosting-key:<certificate id>'), so deleting destroys it while the events stay.
CREATE TABLE hosting_certificates (
    certificate_id uuid        PRIMARY KEY,
    account_id     uuid        NOT NULL,
    instance_id    uuid,                    -- NULL for an uploaded certificate
    serial         text        NOT NULL,
    not_before     timestamptz NOT NULL,
    not_after      timestamptz NOT NULL,
    names          text[]      NOT NULL,
    issuer         text        NOT NULL,
    cert_pem       text        NOT NULL,
    chain_pem      text        NOT NULL,
    sealed_key     text        NOT NULL,
    uploaded       boolean     NOT NULL,
    recorded_at    timestamptz NOT NULL,
    expiry_announced boolean   NOT NULL DEFAULT false  -- uploads: UploadedCertificateExpiring recorded
);
CREATE INDEX hosting_certificates_uploads_expiring ON hosting_certificates (not_after)
    WHERE uploaded AND NOT expiry_announced;
CREATE INDEX hosting_certificates_account ON hosting_certificates (account_id, recorded_at);

-- The ACME account of each certwatch account at the configured CA (key sealed, subject
-- 'hosting-acme-account:<account id>').
CREATE TABLE hosting_acme_accounts (
    account_id  uuid NOT NULL,
    directory   text NOT NULL,
    sealed_key  text NOT NULL,
    account_url text,
    PRIMARY KEY (account_id, directory)
);

-- Every order URL an instance recorded: an order found at the CA after a crash (placed, but
-- not yet recorded) is adopted only if no instance claims it.
CREATE TABLE hosting_orders (
    order_url   text PRIMARY KEY,
    instance_id uuid NOT NULL
);
