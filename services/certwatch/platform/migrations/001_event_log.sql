-- The event log: append-only, gap-free global order, optimistic concurrency per stream.
CREATE SEQUENCE event_position_seq AS bigint;

CREATE TABLE events (
    position        bigint      PRIMARY KEY,
    event_id        uuid        NOT NULL UNIQUE,
    stream_id       text        NOT NULL,
    stream_version  integer     NOT NULL CHECK (stream_version > 0),
    event_type      text        NOT NULL,
    schema_version  smallint    NOT NULL CHECK (schema_version > 0),
    data            jsonb       NOT NULL,
    metadata        jsonb       NOT NULL DEFAULT '{}'::jsonb,
    recorded_at     timestamptz NOT NULL DEFAULT clock_timestamp(),
    UNIQUE (stream_id, stream_version)
);
CREATE INDEX events_type_position ON events (event_type, position);

-- Append-only: an event is a fact, never edited or deleted (redaction is by crypto-shredding).
CREATE FUNCTION events_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'the event log is append-only: % refused', TG_OP
        USING ERRCODE = 'CW403';
END $$;
CREATE TRIGGER events_no_update_delete BEFORE UPDATE OR DELETE ON events
    FOR EACH ROW EXECUTE FUNCTION events_refuse_change();
CREATE TRIGGER events_no_truncate BEFORE TRUNCATE ON events
    FOR EACH STATEMENT EXECUTE FUNCTION events_refuse_change();

-- One round trip per append. The EXCLUSIVE table lock (readers are not blocked) makes
-- positions be handed out in commit order, so a follower reading `position > checkpoint`
-- can never skip a transaction that commits late: the classic bigserial gap problem.
-- p_expected NULL means "any version"; 0 means "the stream must not exist yet".
CREATE FUNCTION append_events(p_stream text, p_expected integer, p_events jsonb)
RETURNS TABLE (out_position bigint, out_version integer, out_duplicate boolean)
LANGUAGE plpgsql AS $$
DECLARE
    v_current integer;
    v_ids uuid[];
    v_existing integer;
BEGIN
    LOCK TABLE events IN EXCLUSIVE MODE;
    SELECT array_agg((e->>'event_id')::uuid) INTO v_ids FROM jsonb_array_elements(p_events) e;
    SELECT count(*) INTO v_existing FROM events WHERE event_id = ANY (v_ids);
    IF v_existing > 0 THEN
        IF v_existing = cardinality(v_ids) AND NOT EXISTS (
            SELECT 1 FROM events WHERE event_id = ANY (v_ids) AND stream_id <> p_stream
        ) THEN
            -- The same append again (a retry): idempotent, report what is stored.
            RETURN QUERY SELECT position, stream_version, true FROM events
                WHERE event_id = ANY (v_ids) ORDER BY position;
            RETURN;
        END IF;
        RAISE EXCEPTION 'append to %: % of % event ids already recorded elsewhere',
            p_stream, v_existing, cardinality(v_ids) USING ERRCODE = 'CW422';
    END IF;
    SELECT coalesce(max(stream_version), 0) INTO v_current FROM events WHERE stream_id = p_stream;
    IF p_expected IS NOT NULL AND v_current <> p_expected THEN
        RAISE EXCEPTION 'stream % is at version %, expected %', p_stream, v_current, p_expected
            USING ERRCODE = 'CW409', DETAIL = v_current::text;
    END IF;
    RETURN QUERY
    INSERT INTO events AS ev (position, event_id, stream_id, stream_version, event_type,
                              schema_version, data, metadata)
    SELECT nextval('event_position_seq'), (e->>'event_id')::uuid, p_stream,
           v_current + i::integer, e->>'type', (e->>'schema_version')::smallint,
           e->'data', coalesce(e->'metadata', '{}'::jsonb)
    FROM jsonb_array_elements(p_events) WITH ORDINALITY AS t(e, i)
    ORDER BY i
    RETURNING ev.position, ev.stream_version, false;
    PERFORM pg_notify('certwatch_events', currval('event_position_seq')::text);
END $$;

-- Where each projection or processor stands; updated in the same transaction as its rows.
CREATE TABLE checkpoints (
    name       text        PRIMARY KEY,
    position   bigint      NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now()
);

-- The outbox relay's bookkeeping: the last position published to JetStream.
CREATE TABLE outbox_relay (
    name       text        PRIMARY KEY,
    position   bigint      NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now()
);
