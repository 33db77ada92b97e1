-- Console users: people who sign in to the web console, each in one account. Passwords are
-- argon2id hashes (argon2-cffi's encoded form, parameters included).
CREATE TABLE console_users (
    user_id       uuid        PRIMARY KEY,
    account_id    uuid        NOT NULL REFERENCES accounts (account_id),
    username      text        NOT NULL UNIQUE,
    password_hash text        NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now()
);
