-- Certificates become a platform store (platform migration 008: `certificates`, by SHA-256,
-- readable by every service). Copy what the classifier already knows; its own tables stay
-- (classifier_certificates is still what the monitoring report reads, classifier_chain_certs
-- what expands compact probe results) until the prober writes the platform store itself.
-- The DER was never kept: it is filled in the first time a probe presents the certificate.
INSERT INTO certificates (sha256, facts)
SELECT decode(sha256, 'hex'), facts FROM classifier_certificates
UNION ALL
SELECT decode(sha256, 'hex'), facts FROM classifier_chain_certs
ON CONFLICT (sha256) DO NOTHING;
