-- Many streams in one round trip (the prober's results, bulk imports). Same guarantees
-- as append_events, which it calls per stream; all or nothing.
CREATE FUNCTION append_batch(p_batch jsonb)
RETURNS TABLE (out_stream text, out_position bigint, out_version integer, out_duplicate boolean)
LANGUAGE plpgsql AS $$
DECLARE
    item jsonb;
BEGIN
    FOR item IN SELECT value FROM jsonb_array_elements(p_batch) LOOP
        RETURN QUERY SELECT item->>'stream', a.out_position, a.out_version, a.out_duplicate
            FROM append_events(item->>'stream', (item->>'expected')::integer, item->'events') a;
    END LOOP;
END $$;
