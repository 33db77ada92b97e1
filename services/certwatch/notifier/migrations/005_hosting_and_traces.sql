-- Each hosted certificate instance's names and when hosting last issued for it: hosting's alerts
-- reach the contacts of the domains it covers, and a certificate it just renewed is no surprise.
CREATE TABLE notifier_hosting (
    instance_id text        PRIMARY KEY,
    account_id  uuid        NOT NULL,
    names       text[]      NOT NULL,
    issued_at   timestamptz
);
CREATE INDEX notifier_hosting_account ON notifier_hosting (account_id);

-- The W3C traceparent of the event that decided a delivery: its send is a span of that trace.
ALTER TABLE notifier_deliveries ADD COLUMN traceparent text;
