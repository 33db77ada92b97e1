-- Concurrent appends without losing the follower guarantee.
--
-- 001 handed out positions under an EXCLUSIVE table lock held until commit, which made
-- every append wait for the previous one's WAL flush (no group commit). Instead, each event
-- now records the id of the transaction that wrote it. Readers take events in
-- (transaction_id, position) order and only below the oldest transaction still running
-- (`pg_snapshot_xmin`): every transaction below it has committed or aborted, so nothing can
-- appear later behind a reader's cursor. Events written before this migration all carry
-- this migration's transaction id, which keeps their position order.
ALTER TABLE events ADD COLUMN transaction_id xid8 NOT NULL DEFAULT pg_current_xact_id();
CREATE UNIQUE INDEX events_transaction_position ON events (transaction_id, position);
DROP INDEX events_type_position;
CREATE INDEX events_type_transaction_position ON events (event_type, transaction_id, position);

ALTER TABLE checkpoints ADD COLUMN transaction_id xid8 NOT NULL DEFAULT '0';
UPDATE checkpoints c SET transaction_id = e.transaction_id
    FROM events e WHERE e.position = c.position;
ALTER TABLE outbox_relay ADD COLUMN transaction_id xid8 NOT NULL DEFAULT '0';
UPDATE outbox_relay o SET transaction_id = e.transaction_id
    FROM events e WHERE e.position = o.position;

DROP FUNCTION append_batch(jsonb);
DROP FUNCTION append_events(text, integer, jsonb);

-- One set-based statement per batch of streams: the expected-version check and the insert.
-- Fast path only: when an event id is already recorded (a retry) or a stream is not at its
-- expected version, it raises (CW409 / CW423) and the caller sorts out which it was.
-- p_batch: [{"stream": s, "expected": n | null, "events": [{event_id, type, schema_version,
-- data, metadata}, ...]}, ...], each stream at most once.
CREATE TYPE append_item AS (ord integer, stream text, expected integer, events jsonb, current integer);
CREATE TYPE appended_row AS (stream text, position bigint, version integer);

-- Appends to many streams in one statement: the expected-version check, then one INSERT.
-- Appending ids that are all recorded already (a retry) returns the stored rows marked as
-- duplicates; that lookup only runs when the fast path did not go through.
-- p_batch: [{"stream": s, "expected": n | null, "events": [{event_id, type, schema_version,
-- data, metadata}, ...]}, ...], each stream at most once.
CREATE FUNCTION append_batch(p_batch jsonb)
RETURNS TABLE (out_stream text, out_position bigint, out_version integer, out_duplicate boolean,
               out_transaction xid8)
LANGUAGE plpgsql AS $$
DECLARE
    v_items append_item[];
    v_total integer;
    v_inserted integer;
    v_conflict record;
    v_rows appended_row[];
BEGIN
    SELECT array_agg(ROW(t.ord::integer, t.item->>'stream', (t.item->>'expected')::integer,
                         t.item->'events',
                         coalesce((SELECT max(e.stream_version) FROM events e
                                   WHERE e.stream_id = t.item->>'stream'), 0))::append_item
                     ORDER BY t.ord)
        INTO v_items
        FROM jsonb_array_elements(p_batch) WITH ORDINALITY AS t(item, ord);
    SELECT coalesce(sum(jsonb_array_length(i.events)), 0) INTO v_total FROM unnest(v_items) AS i;

    SELECT i.stream, i.expected, i.current INTO v_conflict FROM unnest(v_items) AS i
        WHERE i.expected IS NOT NULL AND i.expected <> i.current ORDER BY i.ord LIMIT 1;
    IF FOUND THEN
        IF append_recorded(v_items, v_total) THEN
            RETURN QUERY SELECT * FROM append_existing(v_items);
            RETURN;
        END IF;
        RAISE EXCEPTION 'stream % is at version %, expected %',
            v_conflict.stream, v_conflict.current, v_conflict.expected
            USING ERRCODE = 'CW409', DETAIL = v_conflict.current::text, HINT = v_conflict.stream;
    END IF;

    WITH inserted AS (
        INSERT INTO events AS ev (position, event_id, stream_id, stream_version, event_type,
                                  schema_version, data, metadata)
        SELECT nextval('event_position_seq'), (x.e->>'event_id')::uuid, a.stream,
               a.current + x.j::integer, x.e->>'type', (x.e->>'schema_version')::smallint,
               x.e->'data', coalesce(x.e->'metadata', '{}'::jsonb)
        FROM unnest(v_items) AS a, jsonb_array_elements(a.events) WITH ORDINALITY AS x(e, j)
        ORDER BY a.ord, x.j
        ON CONFLICT (event_id) DO NOTHING
        RETURNING ev.stream_id, ev.position, ev.stream_version
    )
    SELECT array_agg(ROW(i.stream_id, i.position, i.stream_version)::appended_row ORDER BY i.position)
        INTO v_rows FROM inserted AS i;
    v_inserted := coalesce(cardinality(v_rows), 0);
    IF v_inserted = v_total THEN
        RETURN QUERY SELECT r.stream, r.position, r.version, false, pg_current_xact_id()
                     FROM unnest(v_rows) AS r;
        RETURN;
    END IF;
    IF v_inserted = 0 AND append_recorded(v_items, v_total) THEN
        RETURN QUERY SELECT * FROM append_existing(v_items);
        RETURN;
    END IF;
    RAISE EXCEPTION 'append: % of % event ids are already recorded in another append',
        v_total - v_inserted, v_total USING ERRCODE = 'CW422';
END $$;

-- Are all the batch's events recorded already, each in the stream it names? (EXECUTE: a
-- fresh plan each time, never a cached generic plan that scans the whole table.)
CREATE FUNCTION append_recorded(p_items append_item[], p_total integer) RETURNS boolean
LANGUAGE plpgsql AS $$
DECLARE
    v_found integer;
BEGIN
    EXECUTE 'SELECT count(*) FROM events e JOIN (SELECT a.stream, (x->>''event_id'')::uuid AS id'
            ' FROM unnest($1) AS a, jsonb_array_elements(a.events) AS x) w'
            ' ON e.event_id = w.id AND e.stream_id = w.stream'
        INTO v_found USING p_items;
    RETURN v_found = p_total;
END $$;

CREATE FUNCTION append_existing(p_items append_item[])
RETURNS TABLE (out_stream text, out_position bigint, out_version integer, out_duplicate boolean,
               out_transaction xid8)
LANGUAGE plpgsql AS $$
BEGIN
    RETURN QUERY EXECUTE
        'SELECT e.stream_id, e.position, e.stream_version, true, e.transaction_id FROM events e'
        ' WHERE e.event_id IN (SELECT (x->>''event_id'')::uuid FROM unnest($1) AS a,'
        ' jsonb_array_elements(a.events) AS x) ORDER BY e.position'
        USING p_items;
END $$;
