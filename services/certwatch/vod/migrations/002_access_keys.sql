-- AccessKey pairs of the VOD API, per account. The secret is needed in clear to verify an
-- HMAC, so it is sealed (platform/shredding.py, subject 'vod-access-key:<id>') rather than
-- hashed; revoking a key also shreds its data key.
CREATE TABLE vod_access_keys (
    access_key_id text        PRIMARY KEY,
    account_id    uuid        NOT NULL REFERENCES accounts,
    sealed_secret text        NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now(),
    revoked_at    timestamptz
);
CREATE INDEX vod_access_keys_account ON vod_access_keys (account_id);

-- Signature nonces seen, per key, for twice the accepted clock skew (a request stamped 15
-- minutes ahead stays acceptable for 30): in PostgreSQL, so every replica refuses a replay.
CREATE TABLE vod_signature_nonces (
    access_key_id text        NOT NULL,
    nonce         text        NOT NULL,
    seen_at       timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (access_key_id, nonce)
);
CREATE INDEX vod_signature_nonces_seen ON vod_signature_nonces (seen_at);
