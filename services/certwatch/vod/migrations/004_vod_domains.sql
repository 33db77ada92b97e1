-- Accelerated (VOD) domains and the certificates uploaded for them, from vod's own events
-- (contracts/vod.py). A removed domain's row is deleted; its stream stays, so a name added
-- again continues it.
CREATE TABLE vod_domains (
    vod_domain_id uuid        PRIMARY KEY,
    account_id    uuid        NOT NULL,
    domain_name   text        NOT NULL,
    cname         text        NOT NULL,
    sources       text        NOT NULL,
    scope         text        NOT NULL,
    ssl_protocol  text        NOT NULL DEFAULT 'off',
    cert_type     text        NOT NULL DEFAULT '',
    cert_id       text        NOT NULL DEFAULT '',
    cert_name     text        NOT NULL DEFAULT '',
    created_at    timestamptz NOT NULL,
    modified_at   timestamptz NOT NULL
);
CREATE UNIQUE INDEX vod_domains_name ON vod_domains (account_id, domain_name);

-- The private key stays sealed (subject 'vod-cert-key:<cert_id>'), as in the event.
CREATE TABLE vod_uploaded_certificates (
    cert_id            text        PRIMARY KEY,
    account_id         uuid        NOT NULL,
    cert_name          text        NOT NULL,
    domain_name        text        NOT NULL,
    chain_pem          text        NOT NULL,
    summary            jsonb       NOT NULL,
    sealed_private_key text        NOT NULL,
    uploaded_at        timestamptz NOT NULL
);
CREATE INDEX vod_uploaded_certificates_account ON vod_uploaded_certificates (account_id);
