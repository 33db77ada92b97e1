-- Alert contacts: personal data stays sealed (see platform/shredding.py); only the
-- ciphertext is stored here and in the events.
CREATE TABLE inventory_contacts (
    contact_id uuid        PRIMARY KEY,
    account_id uuid        NOT NULL,
    sealed     text        NOT NULL,
    has_secret boolean     NOT NULL DEFAULT false,
    created_at timestamptz NOT NULL,
    updated_at timestamptz NOT NULL
);
CREATE INDEX inventory_contacts_account ON inventory_contacts (account_id);
