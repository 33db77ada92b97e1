-- The certificate each host serves, as DescribeVodDomainCertificateInfo reports it.
CREATE TABLE vod_cert_facts (
    account_id  uuid        NOT NULL,
    host        text        NOT NULL,
    domain_id   uuid        NOT NULL,
    brand       text,
    valid_from  timestamptz,
    valid_to    timestamptz,
    status      text        NOT NULL,
    checked_at  timestamptz NOT NULL,
    PRIMARY KEY (account_id, host)
);
