-- Every vod replica caches AccessKeys and domain lookups (vod/change_feed.py); a change of a
-- cached row, however it is made, tells them all to drop it at once. The topic is
-- TG_ARGV[0] ':' the row's TG_ARGV[1] column: key:<access key id>, account:<account id>.
CREATE FUNCTION vod_notify_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('certwatch_vod_changed',
                      TG_ARGV[0] || ':' || (to_jsonb(coalesce(NEW, OLD)) ->> TG_ARGV[1]));
    RETURN NULL;
END;
$$;

CREATE TRIGGER vod_access_key_changed AFTER INSERT OR UPDATE OR DELETE ON vod_access_keys
    FOR EACH ROW EXECUTE FUNCTION vod_notify_changed('key', 'access_key_id');
CREATE TRIGGER vod_domain_changed AFTER INSERT OR UPDATE OR DELETE ON vod_domains
    FOR EACH ROW EXECUTE FUNCTION vod_notify_changed('account', 'account_id');
CREATE TRIGGER vod_uploaded_certificate_changed AFTER INSERT OR UPDATE OR DELETE ON vod_uploaded_certificates
    FOR EACH ROW EXECUTE FUNCTION vod_notify_changed('account', 'account_id');
CREATE TRIGGER vod_hosting_certificate_changed AFTER INSERT OR UPDATE OR DELETE ON vod_hosting_certificates
    FOR EACH ROW EXECUTE FUNCTION vod_notify_changed('account', 'account_id');
