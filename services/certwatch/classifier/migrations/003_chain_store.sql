-- Certificate facts by fingerprint, owned by the processor (written in its transaction):
-- how a compact ProbeCompleted (chain by reference) gets its full chain back.
CREATE TABLE classifier_chain_certs (
    sha256 text  PRIMARY KEY,
    facts  jsonb NOT NULL
);
