-- The chains (comma-joined leaf-first fingerprints) this domain's last recorded probe
-- reported in full: a probe that sees the same chain again records only the fingerprints.
ALTER TABLE probe_schedule ADD COLUMN reported_chains text[] NOT NULL DEFAULT '{}';
