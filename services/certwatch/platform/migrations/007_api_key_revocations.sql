-- Every service caches verified API keys for a moment; a revocation (or deletion), however
-- it is made, tells them all to forget the key at once (auth.KeyVerifier listens).
CREATE FUNCTION notify_api_key_revoked() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('certwatch_api_key_revoked', OLD.key_id);
    RETURN NULL;
END;
$$;

CREATE TRIGGER api_key_revoked
    AFTER UPDATE OF revoked_at, secret_hash, role OR DELETE ON api_keys
    FOR EACH ROW EXECUTE FUNCTION notify_api_key_revoked();
