-- http-01 key authorizations being presented, readable by every replica: behind one port-80
-- route the CA's GET may reach a replica that did not place the order. Not secret (the CA
-- fetches them in clear); deleted on cleanup, and purged once expired (a replica that died
-- before its cleanup) by the next write.
CREATE TABLE hosting_http01_answers (
    token             text        PRIMARY KEY,
    key_authorization text        NOT NULL,
    expires_at        timestamptz NOT NULL
);
CREATE INDEX hosting_http01_answers_expires ON hosting_http01_answers (expires_at);
