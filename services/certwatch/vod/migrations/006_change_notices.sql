-- Every vod replica caches AccessKeys and domain lookups (vod/change_feed.py); a change of a
-- cached row, however it is made, tells them all to drop it at once.
CREATE FUNCTION vod_notify_key_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('certwatch_vod_changed', 'key:' || coalesce(NEW.access_key_id, OLD.access_key_id));
    RETURN NULL;
END;
$$;

CREATE TRIGGER vod_access_key_changed
    AFTER INSERT OR UPDATE OR DELETE ON vod_access_keys
    FOR EACH ROW EXECUTE FUNCTION vod_notify_key_changed();

CREATE FUNCTION vod_notify_account_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('certwatch_vod_changed', 'account:' || coalesce(NEW.account_id, OLD.account_id));
    RETURN NULL;
END;
$$;

CREATE TRIGGER vod_domain_changed
    AFTER INSERT OR UPDATE OR DELETE ON vod_domains
    FOR EACH ROW EXECUTE FUNCTION vod_notify_account_changed();
CREATE TRIGGER vod_uploaded_certificate_changed
    AFTER INSERT OR UPDATE OR DELETE ON vod_uploaded_certificates
    FOR EACH ROW EXECUTE FUNCTION vod_notify_account_changed();
CREATE TRIGGER vod_hosting_certificate_changed
    AFTER INSERT OR UPDATE OR DELETE ON vod_hosting_certificates
    FOR EACH ROW EXECUTE FUNCTION vod_notify_account_changed();
