-- Accounts and API keys: every RPC is authenticated and scoped to one account.
CREATE TABLE accounts (
    account_id  uuid        PRIMARY KEY,
    name        text        NOT NULL UNIQUE,
    created_at  timestamptz NOT NULL DEFAULT now()
);

-- Only a SHA-256 of the (256-bit random) secret is stored.
CREATE TABLE api_keys (
    key_id      text        PRIMARY KEY,
    account_id  uuid        NOT NULL REFERENCES accounts,
    secret_hash bytea       NOT NULL,
    role        text        NOT NULL CHECK (role IN ('user', 'admin')),
    created_at  timestamptz NOT NULL DEFAULT now(),
    revoked_at  timestamptz
);
