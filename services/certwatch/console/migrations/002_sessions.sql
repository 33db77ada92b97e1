-- Console sessions, shared by every console replica. The cookie's random token is never
-- stored: the row is found by its SHA-256, and the session's API key is sealed (AES-GCM)
-- under a key derived from the token, so the table alone opens no session.
CREATE TABLE console_sessions (
    token_hash  bytea       PRIMARY KEY,
    user_id     uuid        NOT NULL REFERENCES console_users (user_id),
    key_id      text        NOT NULL,
    sealed_key  bytea       NOT NULL,
    expires_at  timestamptz NOT NULL
);
CREATE INDEX console_sessions_expiry ON console_sessions (expires_at);
