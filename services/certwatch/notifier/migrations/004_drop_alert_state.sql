-- The incident projection (notifier_domains) keeps each domain's conditions, and the digest is
-- built from it: the older per-domain alert state had no reader left.
DROP TABLE notifier_alert_state;
DELETE FROM checkpoints WHERE name = 'notifier.alert_state';
