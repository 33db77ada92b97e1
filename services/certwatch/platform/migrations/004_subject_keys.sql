-- Per-subject data keys for crypto-shredding: personal data and secrets go into events
-- encrypted with their subject's key; deleting the key redacts them everywhere, including
-- in the append-only log, without editing an event.
CREATE TABLE subject_keys (
    subject     text        PRIMARY KEY,
    wrapped_key bytea       NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now()
);
