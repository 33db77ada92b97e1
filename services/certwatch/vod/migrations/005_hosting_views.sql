-- What vod reads of hosting's events (contracts/hosting.py), never hosting's tables.
-- vod_free_orders: per hosting instance, the names it was applied for and where its ACME
-- order stands (the Status of a CertType=free certificate): applying, failed, success.
CREATE TABLE vod_free_orders (
    instance_id    text        PRIMARY KEY,
    account_id     uuid        NOT NULL,
    names          text[]      NOT NULL DEFAULT '{}',
    status         text        NOT NULL DEFAULT '',
    certificate_id text        NOT NULL DEFAULT '',
    ended          boolean     NOT NULL DEFAULT false,
    at             timestamptz NOT NULL
);
CREATE INDEX vod_free_orders_names ON vod_free_orders USING gin (names);

-- Hosting's certificates (issued by its ACME orders, or uploaded to it), referable by
-- CertType=cas: `cert_id` is the decimal CertId the SDK carries, `certificate_id` hosting's.
-- No private key: vod serves none of hosting's.
CREATE TABLE vod_hosting_certificates (
    certificate_id text        PRIMARY KEY,
    account_id     uuid        NOT NULL,
    cert_id        text        NOT NULL,
    origin         text        NOT NULL,  -- 'hosted' or 'uploaded'
    chain_pem      text        NOT NULL,
    summary        jsonb       NOT NULL,
    at             timestamptz NOT NULL
);
CREATE INDEX vod_hosting_certificates_cert_id ON vod_hosting_certificates (account_id, cert_id);
