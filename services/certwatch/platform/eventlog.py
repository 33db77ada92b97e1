"""The PostgreSQL event log: the source of truth every projection and stream derives from."""

from __future__ import annotations

import asyncio
import logging
import random
import uuid
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from typing import Any, NamedTuple

import orjson
import psycopg
from psycopg import pq
from psycopg.rows import tuple_row
from psycopg_pool import AsyncConnectionPool

from certwatch.platform import errors, telemetry
from certwatch.platform.events import UPCASTERS, JsonEvent, NewEvent, RecordedEvent, Upcasters, dumps
from certwatch.platform.position_reserve import PositionReserve
from certwatch.platform.stream_heads import COMMITTED, RUNNING, StreamHeads

log = logging.getLogger(__name__)

_COLUMNS = (
    "position, event_id, stream_id, stream_version, event_type, schema_version, data,"
    " metadata, recorded_at, transaction_id"
)
# The fast path of an append: one statement, no function call. It writes nothing when a
# stream is not at its expected version; event ids already recorded are skipped. Whenever
# it did not write every event, `append_batch()` (the SQL function) sorts out why.
_APPEND = (
    "WITH items AS (SELECT t.ord, t.item->>'stream' AS stream, (t.item->>'expected')::integer AS expected,"
    " t.item->'events' AS events, coalesce((SELECT max(e.stream_version) FROM events e"
    " WHERE e.stream_id = t.item->>'stream'), 0) AS current"
    " FROM jsonb_array_elements(%s::jsonb) WITH ORDINALITY AS t(item, ord))"
    " INSERT INTO events AS ev (position, event_id, stream_id, stream_version, event_type,"
    " schema_version, data, metadata)"
    " SELECT nextval('event_position_seq'), (x.e->>'event_id')::uuid, i.stream, i.current + x.j::integer,"
    " x.e->>'type', (x.e->>'schema_version')::smallint, x.e->'data', coalesce(x.e->'metadata', '{}'::jsonb)"
    " FROM items i, jsonb_array_elements(i.events) WITH ORDINALITY AS x(e, j)"
    " WHERE NOT EXISTS (SELECT 1 FROM items c WHERE c.expected IS NOT NULL AND c.expected <> c.current)"
    " ORDER BY i.ord, x.j ON CONFLICT (event_id) DO NOTHING"
    " RETURNING ev.stream_id, ev.position, ev.stream_version, false, ev.transaction_id::text"
)
# The same for the most common append, one event: parameters instead of JSON to unpack.
_APPEND_ONE = (
    "INSERT INTO events AS ev (position, event_id, stream_id, stream_version, event_type,"
    " schema_version, data, metadata)"
    " SELECT nextval('event_position_seq'), %s, %s, c.v + 1, %s, %s, %s::jsonb, %s::jsonb"
    " FROM (SELECT coalesce(max(stream_version), 0) AS v FROM events WHERE stream_id = %s) AS c"
    " WHERE %s::integer IS NULL OR c.v = %s::integer"
    " ON CONFLICT (event_id) DO NOTHING"
    " RETURNING ev.stream_id, ev.position, ev.stream_version, false, ev.transaction_id::text"
)
# One event on a remembered stream head (see `stream_heads`): as plain as an INSERT gets. A
# head behind the log makes the (stream_id, stream_version) unique index refuse the row.
_INSERT_AT = (
    "INSERT INTO events (position, event_id, stream_id, stream_version, event_type, schema_version,"
    " data, metadata) VALUES (nextval('event_position_seq'), %s, %s, %s, %s, %s, %s::jsonb, %s::jsonb)"
    " RETURNING position, transaction_id"
)
# Big batches go by COPY, rows numbered before they are sent. On a connection of its own the
# COPY is one autocommit statement (no BEGIN, no COMMIT round trip, no savepoint), with
# positions reserved ahead (`position_reserve`) and its transaction id read back afterwards; in a
# caller's transaction it runs inside a savepoint. Conflicts surface as unique violations,
# and the batch is retried on the checked path, which tells a duplicate retry from a conflict.
# libpq cannot COPY in pipeline mode: a caller's connection in a pipeline (a projection page)
# takes the one-statement path whatever the size.
_COPY_FROM = 64
_COPY = (
    "COPY events (position, stream_id, stream_version, event_id, event_type, schema_version,"
    " data, metadata) FROM STDIN"
)
# Whether appends made in callers' transactions, each (transaction id, position of its first
# event), have committed: running 'r', committed 'c' (the first event is there: not undone by
# a savepoint's rollback), else 'x'.
_VERDICTS = (
    "ARRAY(SELECT CASE WHEN pg_xact_status(p.x::xid8) = 'in progress' THEN 'r'"
    " WHEN pg_xact_status(p.x::xid8) = 'committed'"
    " AND EXISTS (SELECT 1 FROM events e WHERE e.position = p.pos) THEN 'c' ELSE 'x' END"
    " FROM unnest(%b::text[], %b::bigint[]) WITH ORDINALITY AS p(x, pos, n) ORDER BY p.n)"
)
# One round trip before the COPY when it needs one: the positions to use (none when they
# are reserved), the current version of each stream whose head this process does not know
# (one backward index probe per stream), and the verdicts on earlier appends in callers'
# transactions.
_PREPARE_COPY = (
    "SELECT ARRAY(SELECT nextval('event_position_seq') FROM generate_series(1, %s)),"
    " ARRAY(SELECT coalesce((SELECT max(e.stream_version) FROM events e WHERE e.stream_id = s.id), 0)"
    " FROM unnest(%b::text[]) WITH ORDINALITY AS s(id, n) ORDER BY s.n), " + _VERDICTS
)
_SETTLE_COUNTS = "SELECT " + _VERDICTS
# Appends in callers' transactions not yet known committed, at most: past it the oldest are
# dropped uncounted (logged), in a process whose `count_committed()` does not run.
_UNCOUNTED_LIMIT = 100_000
_RESERVE_AHEAD = 4096  # positions an autocommit COPY that has to ask anyway reserves for later
_TRANSACTION_OF = "SELECT transaction_id FROM events WHERE position = %s"
_STREAM_VERSION_KEY = "events_stream_id_stream_version_key"
_APPEND_CHECKED = (
    "SELECT out_stream, out_position, out_version, out_duplicate, out_transaction::text"
    " FROM append_batch(%s::jsonb)"
)
# Only events of transactions older than every running one: nothing can commit behind them.
_HORIZON = "transaction_id < pg_snapshot_xmin(pg_current_snapshot())"
_RETRIES_ON_RACE = 5
_STALE = object()  # a COPY built on a remembered stream head that another writer had passed

# Events appended and committed by this process, by type (every EventLog of it).
_APPENDED: Counter[str] = Counter()


def _appended_series() -> Iterator[tuple[float, dict[str, str]]]:
    """The totals as counter series, from a copy: read in the exporter's thread."""
    return ((n, {"event.type": t}) for t, n in list(_APPENDED.items()))


Conn = psycopg.AsyncConnection[Any]

Cursor = tuple[int, int]
"""Where a reader stands in global order: (transaction id, position) of the last event read."""

START: Cursor = (0, 0)


def translate(exc: psycopg.Error, *, stream_id: str = "", expected: int | None = None) -> Exception:
    """Map a driver error to the project's exception (or return it unchanged)."""
    state = exc.sqlstate or ""
    if state == "CW409":
        detail = exc.diag.message_detail
        actual = int(detail) if detail and detail.isdigit() else None
        stream = exc.diag.message_hint or stream_id
        return errors.ConcurrencyConflict(stream, expected, actual, exc.diag.message_primary or str(exc))
    if state == "23505" and "stream_id" in (exc.diag.constraint_name or "stream_id"):
        return errors.ConcurrencyConflict(stream_id, expected, None, f"stream {stream_id} moved on")
    if state == "CW422":
        return errors.DuplicateEventId(exc.diag.message_primary or str(exc))
    if state == "CW403":
        return errors.AppendOnlyViolation(exc.diag.message_primary or str(exc))
    if isinstance(exc, psycopg.OperationalError):
        return errors.TransientStoreError(str(exc))
    return exc


class Appended(NamedTuple):
    """Where an appended event landed (a named tuple: a batch returns one per event)."""

    stream_id: str
    position: int
    stream_version: int
    duplicate: bool
    transaction_id: int

    @property
    def cursor(self) -> Cursor:
        return (self.transaction_id, self.position)


def _payload(batch: Sequence[tuple[str, Sequence[NewEvent], int | None]]) -> str:
    return dumps([{"stream": s, "expected": v, "events": [e.as_json() for e in evs]} for s, evs, v in batch])


def _encode(batch: Sequence[tuple[str, Sequence[NewEvent], int | None]]) -> Iterator[tuple[Any, ...]]:
    """The COPY fields of each event after (position, stream, version). Lazily: encoding
    row by row as the COPY streams lets the server ingest the first rows meanwhile."""
    return ((e.event_id, e.type, e.schema_version, dumps(e.data), dumps(e.metadata))
            for _, events, _ in batch for e in events)  # fmt: skip


class _Refused(Exception):
    """A COPY the unique indexes refused (rolled back); `stale`: a remembered head was behind."""

    def __init__(self, *, stale: bool) -> None:
        super().__init__("COPY refused by a unique index")
        self.stale = stale


def _in_pipeline(conn: Conn | None) -> bool:
    return conn is not None and conn.pgconn.pipeline_status != pq.PipelineStatus.OFF


def _whole(rows: list[tuple[Any, ...]], total: int) -> list[tuple[Any, ...]]:
    if 0 < len(rows) < total:
        raise errors.DuplicateEventId(
            f"{total - len(rows)} of {total} event ids are already recorded in another append"
        )
    return rows


class EventLog:
    """Append with optimistic concurrency; read in global or stream order.

    Global order is (transaction id, position): appends run concurrently (no table lock,
    so commits group on the WAL), and a reader only ever sees a prefix of that order that
    can no longer grow behind it. Every method takes an optional connection so a caller can
    append events and update its own rows (and checkpoint) in one transaction.

    Appends are counted (`certwatch.eventlog.appended` {event.type}: the append rate) once
    committed: at once when the log commits them itself; in a caller's transaction when
    `count_committed()` (every service's lag sampler, each 15 s) finds it committed, so an
    append rolled back is never counted. Duplicates (ids already recorded) are not counted.
    """

    def __init__(self, pool: AsyncConnectionPool[Any], upcasters: Upcasters = UPCASTERS):
        self._pool = pool
        self._upcasters = upcasters
        self._heads = StreamHeads()
        self._positions = PositionReserve()
        telemetry.observed_counter(
            "certwatch.eventlog.appended", "{event}", "events appended to the log, once committed"
        ).publish(_appended_series)
        # (transaction id, first position) of an append in a caller's transaction -> its counts
        self._uncounted: dict[tuple[int, int], Counter[str]] = {}

    @property
    def pool(self) -> AsyncConnectionPool[Any]:
        return self._pool

    async def append(
        self,
        stream_id: str,
        events: Sequence[NewEvent],
        *,
        expected_version: int | None,
        conn: Conn | None = None,
    ) -> list[Appended]:
        """Append `events` to `stream_id` if it is at `expected_version` (None: any).

        Raises `ConcurrencyConflict` when another writer got there first. Appending the
        same event ids again returns the stored positions with `duplicate=True`.
        """
        return await self.append_batch([(stream_id, events, expected_version)], conn=conn)

    async def append_batch(
        self,
        batch: Sequence[tuple[str, Sequence[NewEvent], int | None]],
        *,
        conn: Conn | None = None,
    ) -> list[Appended]:
        """Append to many streams in one round trip and one transaction: (stream, events,
        expected version) each, every stream at most once. One conflict fails the batch.

        With no connection given and no expected versions, a race with a concurrent writer
        on the same stream is retried (a few times): "any version" means any.
        """
        if len(batch) == 1 and conn is None and len(batch[0][1]) == 1:
            stream, (event,), expected = batch[0]
            if inserted := await self._insert_at_head(stream, event, expected):
                _APPENDED[event.type] += 1
                return inserted
        batch = [b for b in batch if b[1]]
        if not batch:
            return []
        streams = [s for s, _, _ in batch]
        if len(set(streams)) != len(streams):
            raise ValueError("append_batch: a stream appears twice in one batch")
        try:
            appended = await self._append(batch, streams, conn)
        except errors.TransientStoreError:
            self._forget_server()
            raise
        self._learn(appended, committed=conn is None)
        self._count(batch, appended, committed=conn is None)
        return appended

    def _count(
        self, batch: Sequence[tuple[str, Sequence[NewEvent], int | None]], appended: list[Appended],
        *, committed: bool,
    ) -> None:  # fmt: skip
        """Count the events this append wrote (one `Appended` each, in batch order), or keep
        the counts until its caller's transaction is known committed."""
        events = (e for _, evs, _ in batch for e in evs)
        fresh = [(e.type, a) for e, a in zip(events, appended, strict=True) if not a.duplicate]
        if not fresh:
            return
        counts = Counter(t for t, _ in fresh)
        if committed:
            _APPENDED.update(counts)
            return
        first = fresh[0][1]
        self._uncounted.setdefault((first.transaction_id, first.position), Counter()).update(counts)
        if len(self._uncounted) > _UNCOUNTED_LIMIT:
            dropped = self._uncounted.pop(next(iter(self._uncounted)))
            log.warning("event log: %d appended events left uncounted (is count_committed() run?)",
                        dropped.total())  # fmt: skip

    async def count_committed(self, conn: Conn) -> None:
        """Count the appends made in callers' transactions that have committed since the last
        call; drop those rolled back (their transaction, or the savepoint they ran in)."""
        keys = list(self._uncounted)
        if not keys:
            return
        cur = await conn.execute(_SETTLE_COUNTS, ([str(x) for x, _ in keys], [p for _, p in keys]))
        row = await cur.fetchone()
        assert row is not None
        for key, verdict in zip(keys, row[0], strict=True):
            if verdict != RUNNING and (counts := self._uncounted.pop(key, None)) and verdict == COMMITTED:
                _APPENDED.update(counts)

    def _forget_server(self) -> None:
        """After a lost connection: the server may be another one when the pool reconnects
        (a failover), behind what this process saw (and where its transaction ids may not be
        known: the appends not yet counted are dropped)."""
        self._heads.clear()
        self._positions.clear()
        self._uncounted.clear()

    async def _append(
        self, batch: Sequence[tuple[str, Sequence[NewEvent], int | None]], streams: list[str],
        conn: Conn | None,
    ) -> list[Appended]:  # fmt: skip
        total = sum(len(evs) for _, evs, _ in batch)
        retry = conn is None and all(v is None for _, _, v in batch)
        for attempt in range(_RETRIES_ON_RACE):
            try:
                if total >= _COPY_FROM and not _in_pipeline(conn):
                    return await self._append_copy(batch, streams, total, conn)
                rows = await self._fast(batch, total, conn)
                if len(rows) != total:  # nothing written: why?
                    rows = await self._run(_APPEND_CHECKED, (_payload(batch),), conn)
                return [Appended(r[0], int(r[1]), int(r[2]), bool(r[3]), int(r[4])) for r in rows]
            except psycopg.Error as exc:
                error = translate(exc, stream_id=streams[0] if len(streams) == 1 else "",
                                         expected=batch[0][2] if len(batch) == 1 else None)  # fmt: skip
                if retry and isinstance(error, errors.ConcurrencyConflict) and attempt < _RETRIES_ON_RACE - 1:
                    # Two writers of the same streams that retry in step collide again; a short
                    # random pause breaks the step (seen: two processes losing five times in a row).
                    await asyncio.sleep(random.uniform(0, 0.002 * 2**attempt))
                    continue
                raise error from exc
        raise AssertionError("unreachable")

    async def _append_copy(
        self, batch: Sequence[tuple[str, Sequence[NewEvent], int | None]], streams: list[str], total: int,
        conn: Conn | None,
    ) -> list[Appended]:  # fmt: skip
        copied = await self._copy_via(conn, batch, total, guess=self._heads.use())
        if copied is _STALE:
            self._heads.stale(streams)
            copied = await self._copy_via(conn, batch, total, guess=False)
        if isinstance(copied, list):
            return copied
        self._heads.forget(streams)
        rows = await self._run(_APPEND_CHECKED, (_payload(batch),), conn)
        return [Appended(r[0], int(r[1]), int(r[2]), bool(r[3]), int(r[4])) for r in rows]

    def _learn(self, appended: list[Appended], *, committed: bool) -> None:
        """Remember the heads this append reached (see `stream_heads`)."""
        fresh = [a for a in appended if not a.duplicate]
        if not fresh:
            return
        if committed:
            self._heads.committed([(a.stream_id, a.stream_version) for a in fresh])
        else:
            heads = {a.stream_id: a.stream_version for a in fresh}
            self._heads.tentative(fresh[0].transaction_id, fresh[0].position, heads)

    async def _copy_via(
        self, conn: Conn | None, batch: Sequence[tuple[str, Sequence[NewEvent], int | None]], total: int,
        *, guess: bool,
    ) -> list[Appended] | object | None:  # fmt: skip
        try:
            if conn is not None:
                async with conn.transaction():  # a savepoint in the caller's transaction
                    return await self._copy(conn, batch, total, guess=guess, own=False)
            async with self._pool.connection() as own:
                return await self._copy(own, batch, total, guess=guess, own=True)
        except _Refused as refused:
            return _STALE if refused.stale else None

    async def _copy(
        self, conn: Conn, batch: Sequence[tuple[str, Sequence[NewEvent], int | None]], total: int,
        *, guess: bool, own: bool,
    ) -> list[Appended] | object | None:  # fmt: skip
        """Append by COPY. None when the checked path must decide; `_STALE` when a head this
        process remembered turned out to be behind the log. `own`: an autocommit connection
        of the log's own, where the COPY is a transaction by itself."""
        heads = self._heads
        # A stream expected not to exist needs no lookup: if it does exist, its version 1
        # collides in the unique index and the COPY is refused.
        current = {s: 0 for s, _, v in batch if v == 0}
        guessed = heads.guess_many((s, v) for s, _, v in batch if v != 0) if guess else {}
        current.update(guessed)
        unknown = [s for s, _, _ in batch if s not in current]
        keys, xids, first_positions = heads.pending()
        # Positions drawn in the caller's session keep increasing within its transaction.
        positions = self._positions.take(total) if own else None
        if unknown or keys or positions is None:
            ask = 0 if positions else total + _RESERVE_AHEAD if own else total
            prepare = asyncio.ensure_future(
                conn.execute(_PREPARE_COPY, (ask, unknown, xids, first_positions), prepare=False)
            )
            try:
                await asyncio.sleep(0)  # the query is on its way: encode the rows meanwhile
                encoded: Iterable[tuple[Any, ...]] = list(_encode(batch))
            finally:
                row = await (await prepare).fetchone()
            assert row is not None
            heads.settle(keys, row[2])
            if not positions:
                positions = row[0][:total]
                self._positions.add(row[0][total:])
            current.update(zip(unknown, row[1], strict=True))
            if any(v is not None and current[s] != v for s, _, v in batch):
                return None
        else:
            encoded = _encode(batch)
        numbered = [(s, current[s] + k) for s, events, _ in batch for k in range(1, len(events) + 1)]
        try:
            async with conn.cursor() as cur, cur.copy(_COPY) as copy:
                write = copy.write_row
                for (stream, version), position, fields in zip(numbered, positions, encoded, strict=True):
                    await write((position, stream, version, *fields))
        except psycopg.errors.UniqueViolation as exc:
            # refused whole; a remembered head that was behind, or a recorded id or lost race
            # (the checked path decides)
            raise _Refused(stale=bool(guessed) and exc.diag.constraint_name == _STREAM_VERSION_KEY) from exc
        found = await (await conn.execute(_TRANSACTION_OF, (positions[0],))).fetchone()
        assert found is not None
        xid = found[0]
        return [Appended(s, p, v, False, xid) for (s, v), p in zip(numbered, positions, strict=True)]

    async def _insert_at_head(self, stream: str, event: NewEvent, expected: int | None) -> list[Appended]:
        """One event in a transaction of its own, on a head this process remembers: a plain
        INSERT, no lookup. Empty when there is no head to build on, or it was behind the log
        (the unique index refused the version) or the id is recorded: the checked statements
        then decide. Never in a caller's transaction, which the refusal would abort."""
        heads = self._heads
        if (head := heads.guess(stream, expected)) is None or not heads.use():
            return []
        version = head + 1
        params = (event.event_id, stream, version, event.type, event.schema_version, dumps(event.data),
                  dumps(event.metadata))  # fmt: skip
        try:
            async with self._pool.connection() as own:
                row = await (await own.execute(_INSERT_AT, params)).fetchone()
        except psycopg.errors.UniqueViolation as exc:
            if exc.diag.constraint_name == _STREAM_VERSION_KEY:
                heads.stale((stream,))
            return []
        except psycopg.OperationalError as exc:
            self._forget_server()
            raise errors.TransientStoreError(str(exc)) from exc
        assert row is not None
        heads.committed(((stream, version),))
        return [Appended(stream, row[0], version, False, row[1])]

    async def _fast(
        self, batch: Sequence[tuple[str, Sequence[NewEvent], int | None]], total: int, conn: Conn | None
    ) -> list[tuple[Any, ...]]:
        """The one-statement append. It writes all or, on a version conflict, nothing; when
        some ids are recorded already it writes the rest, so that case raises inside a
        transaction (the caller's, or one of our own) to undo them."""
        if total == 1:
            (stream, (event,), expected) = batch[0]
            params = (event.event_id, stream, event.type, event.schema_version, dumps(event.data),
                      dumps(event.metadata), stream, expected, expected)  # fmt: skip
            return await self._run(_APPEND_ONE, params, conn)
        payload = _payload(batch)
        if conn is not None:
            return _whole(await self._run(_APPEND, (payload,), conn), total)
        async with self._pool.connection() as own, own.pipeline(), own.transaction():
            return _whole(await (await own.execute(_APPEND, (payload,))).fetchall(), total)

    async def _run(self, sql: str, params: Sequence[Any], conn: Conn | None) -> list[tuple[Any, ...]]:
        rows: list[tuple[Any, ...]]
        if conn is not None:
            rows = await (await conn.execute(sql, params)).fetchall()
            return rows
        async with self._pool.connection() as own:
            rows = await (await own.execute(sql, params)).fetchall()
            return rows

    async def read_all(
        self,
        after: Cursor = START,
        *,
        limit: int = 1000,
        types: Sequence[str] | None = None,
        conn: Conn | None = None,
        whole_transactions: bool = False,
    ) -> list[RecordedEvent]:
        """Committed events after `after` in global order, optionally of some types only.

        Never returns an event that a transaction still running could precede. With
        `whole_transactions`, a full page also carries the rest of its last transaction
        (so more than `limit` events): a projection applying pages never shows half of an
        append, such as a new chain without the ownership change that came with it.
        """
        clauses = ["(transaction_id, position) > (%s::text::xid8, %s)", _HORIZON]
        params: list[Any] = [str(after[0]), after[1]]
        if types is not None:
            clauses.append("event_type = ANY(%b)")
            params.append(list(types))
        sql = (
            f"SELECT {_COLUMNS} FROM events WHERE {' AND '.join(clauses)}"
            f" ORDER BY transaction_id, position LIMIT {int(limit)}"
        )
        events = await self._fetch(sql, params, conn)
        if whole_transactions and events and len(events) == limit:
            last = events[-1]
            rest = ["transaction_id = %s::text::xid8", "position > %s"]
            rest_params: list[Any] = [str(last.transaction_id), last.position]
            if types is not None:
                rest.append("event_type = ANY(%b)")
                rest_params.append(list(types))
            events += await self._fetch(
                f"SELECT {_COLUMNS} FROM events WHERE {' AND '.join(rest)} ORDER BY position",
                rest_params,
                conn,
            )
        return events

    async def read_all_json(self, after: Cursor = START, *, limit: int = 1000) -> list[JsonEvent]:
        """`read_all` (every type, in global order, never past the horizon) with each event's
        data and metadata as JSON text. An event of a type with upcasters is upcast, and its
        data encoded again: the text is always the payload `read_all` would return."""
        sql = (
            "SELECT position, event_id::text, stream_id, stream_version, event_type, schema_version, data::text,"
            " metadata::text, recorded_at, transaction_id, metadata->>'traceparent' FROM events"
            f" WHERE (transaction_id, position) > (%s::text::xid8, %s) AND {_HORIZON}"
            f" ORDER BY transaction_id, position LIMIT {int(limit)}"
        )
        async with self._pool.connection() as conn, conn.cursor(row_factory=tuple_row) as cur:
            await cur.execute(sql.encode(), [str(after[0]), after[1]])
            rows = await cur.fetchall()
        make, old = JsonEvent._make, self._upcasters.types
        return [self._upcast_json(make(r)) if r[4] in old else make(r) for r in rows]

    def _upcast_json(self, event: JsonEvent) -> JsonEvent:
        recorded = RecordedEvent(event.position, uuid.UUID(event.event_id), *event[2:6], orjson.loads(event.data),
                                 {}, event.recorded_at, event.transaction_id)  # fmt: skip
        upcast = self._upcasters.upcast(recorded)
        if upcast is recorded:
            return event
        return event._replace(schema_version=upcast.schema_version, data=dumps(upcast.data))

    async def read_stream(
        self, stream_id: str, *, after_version: int = 0, conn: Conn | None = None, for_update: bool = False
    ) -> list[RecordedEvent]:
        """The stream's events in version order. `for_update` (in the caller's transaction)
        first takes the stream's lock until commit: writers of a hot stream (an account's
        quota, which every enable appends to) queue behind each other instead of losing
        optimistic races over and over, which starves a long transaction such as a batch add."""
        if for_update:
            if conn is None:
                raise ValueError("read_stream(for_update=True) needs the caller's transaction (conn)")
            await conn.execute("SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))", (stream_id,))
        sql = (
            f"SELECT {_COLUMNS} FROM events WHERE stream_id = %s AND stream_version > %s"
            " ORDER BY stream_version"
        )
        return await self._fetch(sql, [stream_id, after_version], conn)

    async def read_streams(
        self, stream_ids: Sequence[str], *, conn: Conn | None = None
    ) -> dict[str, list[RecordedEvent]]:
        """Several streams in one round trip (a processor's page names hundreds), each in
        version order; a stream with no events maps to an empty list."""
        found: dict[str, list[RecordedEvent]] = {s: [] for s in stream_ids}
        if not stream_ids:
            return found
        sql = f"SELECT {_COLUMNS} FROM events WHERE stream_id = ANY(%b) ORDER BY stream_id, stream_version"
        for event in await self._fetch(sql, [list(found)], conn):
            found[event.stream_id].append(event)
        return found

    async def get(self, event_id: uuid.UUID, *, conn: Conn | None = None) -> RecordedEvent | None:
        rows = await self._fetch(f"SELECT {_COLUMNS} FROM events WHERE event_id = %s", [event_id], conn)
        return rows[0] if rows else None

    async def head(self, *, conn: Conn | None = None) -> int:
        """The highest position handed out so far (0 for an empty log)."""
        sql = "SELECT coalesce(max(position), 0) FROM events"
        if conn is not None:
            row = await (await conn.execute(sql)).fetchone()
        else:
            async with self._pool.connection() as own:
                row = await (await own.execute(sql)).fetchone()
        assert row is not None
        return int(row[0])

    async def _fetch(self, sql: str, params: Sequence[Any], conn: Conn | None) -> list[RecordedEvent]:
        if conn is not None:
            async with conn.cursor(row_factory=tuple_row) as cur:
                await cur.execute(sql.encode(), params)
                rows = await cur.fetchall()
        else:
            async with self._pool.connection() as own, own.cursor(row_factory=tuple_row) as cur:
                await cur.execute(sql.encode(), params)
                rows = await cur.fetchall()
        upcast, old = self._upcasters.upcast, self._upcasters.types
        make = RecordedEvent._make
        return [upcast(make(r)) if r[4] in old else make(r) for r in rows]
