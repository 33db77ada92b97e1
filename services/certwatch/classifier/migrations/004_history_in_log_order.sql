-- History lists newest first in the log's global order, (transaction_id, position).
-- Position alone is not that order: each session draws positions from a cached block
-- (platform migration 006) and COPY appends use positions reserved ahead.
DO $$
DECLARE
    t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['classifier_status_history', 'classifier_ownership_changes'] LOOP
        EXECUTE format('ALTER TABLE %I ADD COLUMN transaction_id xid8', t);
        EXECUTE format('UPDATE %I h SET transaction_id = e.transaction_id FROM events e'
                       ' WHERE e.position = h.position', t);
        EXECUTE format('ALTER TABLE %I ALTER COLUMN transaction_id SET NOT NULL', t);
        EXECUTE format('DROP INDEX %I', t || '_domain');
        EXECUTE format('CREATE INDEX %I ON %I (domain_id, transaction_id, position)', t || '_domain', t);
    END LOOP;
END
$$;
