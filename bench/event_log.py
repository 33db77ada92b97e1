"""Event-log throughput: single appends, batched appends, replay; each next to a bare reference.

Run alone: `.venv/bin/python -m bench.event_log` (from the repo root).

PostgreSQL is freshly started with durable settings (fsync on, synchronous_commit as
configured by default: on) — what production gets. The references run on the same server,
in the same database, interleaved with the measured phases round by round so drift (table
growth, checkpoints, a noisy neighbour) hits both sides alike:

- single appends: `EventLog.append` (one event, one transaction) at 1, 4 and 16 writers vs
  a plain `INSERT ... RETURNING position, transaction_id` into `bench_bare_events`, a copy
  of `events` (`LIKE events INCLUDING DEFAULTS/CONSTRAINTS/INDEXES`: same columns, the
  `transaction_id DEFAULT pg_current_xact_id()` column, PK, UNIQUEs, the
  (transaction_id, position) and (event_type, transaction_id, position) indexes) but no
  function and no expected-version check, at the same concurrency; a `(diag)` phase does
  the same append as the checked statement (`INSERT ... SELECT` with the version lookup),
  what an append costs on a stream whose head the process does not know;
- batched appends: `append_batch` (500 streams x 1 event) and `append` (500 events, one
  stream) vs `COPY` of 500 rows into the bare table in one transaction;
- replay, in a database of its own (`bench_replay`, same migrations) holding exactly
  REPLAY_EVENTS events over REPLAY_STREAMS streams, so `catch_up` (which now always reads
  to the log's horizon) replays a fixed amount: `projection.catch_up` (pages of 2000) with a
  `handle_batch` projection writing each page with ONE `INSERT ... SELECT FROM unnest(...)
  ... ON CONFLICT DO UPDATE` vs the same SELECT + unnest upsert done bare, one transaction
  per page; diagnostic rows for the per-event handler (one upsert per event, pipelined by
  `catch_up`), a no-op page handler and `read_all` alone, against a bare keyset-paged
  `SELECT ... ORDER BY transaction_id, position`.
"""

from __future__ import annotations

import itertools
import time
import uuid
from typing import Any

from psycopg.conninfo import make_conninfo
from psycopg_pool import AsyncConnectionPool

from bench._common import (
    Row,
    bounded,
    cli,
    fresh_servers,
    log_mentions,
    percentile,
    pg_settings,
    save,
    timed_workers,
)
from certwatch.platform import db, projection
from certwatch.platform.eventlog import _APPEND_ONE, START, EventLog
from certwatch.platform.events import NewEvent, RecordedEvent, dumps
from certwatch.services import MIGRATIONS

BENCH = "event_log"
PHASE_S = 1.5  # seconds per measured phase
ROUNDS = 4  # interleaved rounds (measured, reference, ...): more, shorter rounds, less spread
WRITERS = (1, 4, 16)
BATCH = 500
REPLAY_EVENTS = 30_000
REPLAY_STREAMS = 5_000  # a page of 2000 events touches ~2000 distinct projection rows
PAGE = 2000
REPLAY_TARGET = 50_000.0
RATIO_TARGET = 0.80
REPLAY_DB = "bench_replay"

ACCOUNT = str(uuid.uuid4())
META = {"account_id": ACCOUNT, "traceparent": "00-" + "ab" * 16 + "-" + "cd" * 8 + "-01"}
T_SINGLE, T_BATCH, T_BULK = "BenchSingleAppended", "BenchProbeCompleted", "BenchBulkImported"
TYPES = [T_SINGLE, T_BATCH, T_BULK]

_COLUMNS = (
    "position, event_id, stream_id, stream_version, event_type, schema_version, data,"
    " metadata, recorded_at, transaction_id"
)
_BARE_COLS = "event_id, stream_id, stream_version, event_type, schema_version, data, metadata"
SETUP_SQL = [
    "CREATE SEQUENCE bench_bare_seq AS bigint",
    # same columns (incl. transaction_id xid8 DEFAULT pg_current_xact_id()), CHECKs, PK,
    # UNIQUEs and the (transaction_id, position) / (event_type, transaction_id, position)
    # indexes as events (migration 005)
    "CREATE TABLE bench_bare_events (LIKE events INCLUDING DEFAULTS INCLUDING CONSTRAINTS INCLUDING INDEXES)",
    "ALTER TABLE bench_bare_events ALTER position SET DEFAULT nextval('bench_bare_seq')",
]
REPLAY_SETUP_SQL = [
    "CREATE TABLE bench_projection (stream_id text PRIMARY KEY, last_position bigint NOT NULL,"
    " n integer NOT NULL)",
]
BARE_INSERT = (
    f"INSERT INTO bench_bare_events ({_BARE_COLS}) VALUES (%s, %s, %s, %s, 1, %s::jsonb,"
    " %s::jsonb) RETURNING position, transaction_id"
)
BARE_COPY = f"COPY bench_bare_events ({_BARE_COLS}) FROM STDIN"
# diagnostic: the jsonb transport append_batch uses, as one plain statement (no plpgsql, no
# expected-version lookup, no ON CONFLICT): the upper bound of the set-based function
BARE_JSONB_INSERT = (
    f"INSERT INTO bench_bare_events ({_BARE_COLS})"
    " SELECT (e->>'event_id')::uuid, e->>'stream', (e->>'v')::integer, e->>'type',"
    " (e->>'schema_version')::smallint, e->'data', coalesce(e->'metadata', '{}'::jsonb)"
    " FROM jsonb_array_elements(%s::jsonb) e RETURNING position, transaction_id"
)
# the reference reader: keyset paging on the (transaction_id, position) index, no type
# filter, no horizon
BARE_PAGE = (
    f"SELECT {_COLUMNS} FROM events WHERE (transaction_id, position) > (%s::text::xid8, %s)"
    f" ORDER BY transaction_id, position LIMIT {PAGE}"
)
# observability only (server log): lock waits over deadlock_timeout and autovacuum runs
OBSERVE_SQL = [
    "ALTER SYSTEM SET log_lock_waits = on",
    "ALTER SYSTEM SET log_autovacuum_min_duration = 0",
    "SELECT pg_reload_conf()",
]
LOG_NEEDLES = ("canceling autovacuum task", "still waiting for", "automatic analyze",
               "automatic vacuum", "checkpoint starting")  # fmt: skip
UPSERT = (
    "INSERT INTO bench_projection (stream_id, last_position, n) VALUES (%s, %s, 1)"
    " ON CONFLICT (stream_id) DO UPDATE SET last_position = excluded.last_position,"
    " n = bench_projection.n + 1"
)
# a page in one statement; GROUP BY because ON CONFLICT DO UPDATE may not touch a row twice
UPSERT_PAGE = (
    "INSERT INTO bench_projection (stream_id, last_position, n)"
    " SELECT s, max(p), count(*) FROM unnest(%b::text[], %b::bigint[]) AS u(s, p) GROUP BY s"
    " ON CONFLICT (stream_id) DO UPDATE SET last_position = excluded.last_position,"
    " n = bench_projection.n + excluded.n"
)


def payload(i: int) -> dict[str, Any]:
    """About the size and shape of a DomainAdded / MonitoringEnabled event."""
    return {
        "domain_id": str(uuid.uuid4()), "account_id": ACCOUNT, "host": f"d{i}.example.com",
        "port": 443, "generation": 1, "contact_ids": [], "first_enabled_at": None,
        "source": "bench",
    }  # fmt: skip


class _Phases:
    """Accumulates (items, seconds) per named phase across interleaved rounds."""

    def __init__(self) -> None:
        self.items: dict[str, int] = {}
        self.secs: dict[str, float] = {}
        self.lat: dict[str, list[float]] = {}

    def add(self, name: str, items: int, secs: float, lat: list[float]) -> None:
        self.items[name] = self.items.get(name, 0) + items
        self.secs[name] = self.secs.get(name, 0.0) + secs
        self.lat.setdefault(name, []).extend(lat)

    def rate(self, name: str) -> float:
        return self.items[name] / self.secs[name] if self.secs.get(name) else 0.0


async def _single(pool: AsyncConnectionPool[Any], log: EventLog, ph: _Phases) -> None:
    tags = itertools.count()
    for writers in WRITERS:
        for _ in range(ROUNDS):
            tag = next(tags)

            async def append(w: int, i: int, tag: int = tag) -> int:
                await log.append(f"single-{tag}-{w}", [NewEvent(T_SINGLE, payload(i), metadata=META)],
                                 expected_version=i)  # fmt: skip
                return 1

            async def bare(w: int, i: int, tag: int = tag) -> int:
                async with pool.connection() as conn:
                    cur = await conn.execute(BARE_INSERT, (
                        uuid.uuid4(), f"single-{tag}-{w}", i + 1, T_SINGLE, dumps(payload(i)),
                        dumps(META)))  # fmt: skip
                    await cur.fetchall()
                return 1

            async def checked(w: int, i: int, tag: int = tag) -> int:
                # the statement an append uses on a head the process does not know
                stream = f"checked-{tag}-{w}"
                async with pool.connection() as conn:
                    cur = await conn.execute(_APPEND_ONE, (
                        uuid.uuid4(), stream, T_SINGLE, 1, dumps(payload(i)), dumps(META), stream, i, i))  # fmt: skip
                    if not await cur.fetchall():
                        raise RuntimeError(f"checked append to {stream} at {i} returned no row")
                return 1

            for name, op in ((f"append x{writers}", append), (f"insert x{writers}", bare),
                             (f"checked x{writers}", checked)):  # fmt: skip
                items, secs, lat = await timed_workers(writers, op, seconds=PHASE_S, max_ops=200_000)
                ph.add(name, items, secs, lat)


async def _batched(pool: AsyncConnectionPool[Any], log: EventLog, ph: _Phases) -> None:
    versions = itertools.count(1)
    bulk = itertools.count()
    # Payloads exist before the timed region, on both sides: append_batch is handed a batch
    # it cannot start on before the caller has built it whole, whereas building them inside
    # the bare COPY loop would let it overlap their construction with the server's ingest.
    payloads = [payload(j) for j in range(BATCH)]

    async def append_batch(w: int, i: int) -> int:
        batch = [(f"probe-{j}", [NewEvent(T_BATCH, payloads[j], metadata=META)], None)
                 for j in range(BATCH)]  # fmt: skip
        return len(await log.append_batch(batch))

    async def append_one_stream(w: int, i: int) -> int:
        events = [NewEvent(T_BULK, payloads[j], metadata=META) for j in range(BATCH)]
        return len(await log.append(f"bulk-{next(bulk)}", events, expected_version=0))

    async def copy(w: int, i: int) -> int:
        version = next(versions)
        async with (
            pool.connection() as conn, conn.transaction(), conn.cursor() as cur,
            cur.copy(BARE_COPY) as cp,
        ):  # fmt: skip
            for j in range(BATCH):
                await cp.write_row((uuid.uuid4(), f"copy-{j}", version, T_BATCH, 1,
                                    dumps(payloads[j]), dumps(META)))  # fmt: skip
        return BATCH

    async def jsonb_insert(w: int, i: int) -> int:
        version = next(versions)
        body = dumps([
            {"event_id": str(uuid.uuid4()), "stream": f"copy-{j}", "v": version, "type": T_BATCH,
             "schema_version": 1, "data": payloads[j], "metadata": META}
            for j in range(BATCH)
        ])  # fmt: skip
        async with pool.connection() as conn:
            return len(await (await conn.execute(BARE_JSONB_INSERT, (body,))).fetchall())

    for _ in range(ROUNDS):
        for name, op in (("append_batch", append_batch), ("append 1 stream", append_one_stream),
                         ("copy", copy), ("jsonb insert", jsonb_insert)):  # fmt: skip
            items, secs, lat = await timed_workers(1, op, seconds=PHASE_S, max_ops=10_000)
            ph.add(name, items, secs, lat)


async def _fill_replay(log: EventLog) -> None:
    """REPLAY_EVENTS events, the three types interleaved, REPLAY_STREAMS streams."""
    k = 0
    for start in range(0, REPLAY_EVENTS, BATCH):
        batch = []
        for j in range(start, min(start + BATCH, REPLAY_EVENTS)):
            batch.append((f"replay-{j % REPLAY_STREAMS}",
                          [NewEvent(TYPES[k % 3], payload(j), metadata=META)], None))  # fmt: skip
            k += 1
        await log.append_batch(batch)


async def _noop_page(conn: Any, events: Any) -> None:
    return None


async def _upsert(conn: Any, event: RecordedEvent) -> None:
    await conn.execute(UPSERT, (event.stream_id, event.position))


async def _upsert_page(conn: Any, events: Any) -> None:
    await conn.execute(UPSERT_PAGE, ([e.stream_id for e in events], [e.position for e in events]))


async def _replay(pool: AsyncConnectionPool[Any], log: EventLog, ph: _Phases) -> dict[str, Any]:
    await _fill_replay(log)
    max_pages = REPLAY_EVENTS // PAGE + 2
    explain = (
        f"EXPLAIN SELECT {_COLUMNS} FROM events WHERE (transaction_id, position) > ('0'::xid8, 0)"
        " AND transaction_id < pg_snapshot_xmin(pg_current_snapshot())"
        f" AND event_type = ANY(%s) ORDER BY transaction_id, position LIMIT {PAGE}"
    )
    async with pool.connection() as conn:
        for sql in REPLAY_SETUP_SQL:
            await conn.execute(sql)
        n = int((await (await conn.execute("SELECT count(*) FROM events")).fetchone())[0])
        plan_fresh = await (await conn.execute(explain, (TYPES,))).fetchall()

    async def bare_select() -> int:
        got, after = 0, ("0", 0)
        async with pool.connection() as conn:
            for _ in range(max_pages):
                rows = await (await conn.execute(BARE_PAGE, after)).fetchall()
                if not rows:
                    break
                got, after = got + len(rows), (str(rows[-1][9]), rows[-1][0])
        return got

    async def bare_select_upsert() -> int:
        await reset()
        got, after = 0, ("0", 0)
        async with pool.connection() as conn:
            for _ in range(max_pages):
                async with conn.transaction():
                    rows = await (await conn.execute(BARE_PAGE, after)).fetchall()
                    if rows:
                        await conn.execute(UPSERT_PAGE, ([r[2] for r in rows], [r[0] for r in rows]))
                if not rows:
                    break
                got, after = got + len(rows), (str(rows[-1][9]), rows[-1][0])
        return got

    async def read_all() -> int:
        got, after = 0, START
        for _ in range(max_pages):
            events = await log.read_all(after, limit=PAGE, types=TYPES)
            if not events:
                break
            got, after = got + len(events), events[-1].cursor
        return got

    # once, before any ANALYZE: what a rebuild right after a bulk load gets (autovacuum has
    # not analyzed the table yet); every measured round below runs on analyzed statistics
    async with bounded(120, "replay phase read_all unanalyzed"):
        t0 = time.perf_counter()
        got = await read_all()
        ph.add("read_all unanalyzed", got, time.perf_counter() - t0, [])
    async with pool.connection() as conn:
        await conn.execute("ANALYZE events")
        plan = await (await conn.execute(explain, (TYPES,))).fetchall()

    runs = itertools.count()

    async def reset() -> None:
        async with pool.connection() as conn:
            await conn.execute("TRUNCATE bench_projection")

    async def catch_up(**handler: Any) -> int:
        await reset()
        proj = projection.Projection(f"bench.replay.{next(runs)}", TYPES, **handler)
        return await projection.catch_up(log, proj, page=PAGE)

    phases = (
        ("bare select", bare_select),
        ("bare select+upsert page", bare_select_upsert),
        ("read_all", read_all),
        ("catch_up noop page", lambda: catch_up(handle_batch=_noop_page)),
        ("catch_up upsert page", lambda: catch_up(handle_batch=_upsert_page)),
        ("catch_up upsert per event", lambda: catch_up(handle=_upsert)),
    )
    counts: dict[str, int] = {}
    upserted: dict[str, int] = {}
    for _ in range(ROUNDS):
        for name, fn in phases:
            async with bounded(120, f"replay phase {name}"):
                t0 = time.perf_counter()
                got = await fn()
                ph.add(name, got, time.perf_counter() - t0, [])
            counts[name] = got
            if "upsert" in name:  # the projection really got every event
                async with pool.connection() as conn:
                    cur = await conn.execute("SELECT coalesce(sum(n), 0) FROM bench_projection")
                    upserted[name] = int((await cur.fetchone())[0])
    for name, got in counts.items():
        if got != n:
            raise RuntimeError(f"replay phase {name} saw {got} events, the log holds {n}")
    for name, got in upserted.items():
        if got != n:
            raise RuntimeError(f"replay phase {name} applied {got} events, the log holds {n}")
    return {"replay_events": n, "replay_streams": REPLAY_STREAMS, "rows_per_phase": counts,
            "projection_events_applied": upserted, "read_all_plan": [r[0] for r in plan],
            "read_all_plan_unanalyzed": [r[0] for r in plan_fresh]}  # fmt: skip


async def run() -> list[Row]:
    with fresh_servers("eventlog") as (pg, _nats):
        pool = await db.open_pool(pg.url, min_size=5, max_size=max(WRITERS) + 4, migrate=MIGRATIONS)
        replay_pool: AsyncConnectionPool[Any] | None = None
        try:
            async with pool.connection() as conn:
                for sql in SETUP_SQL:
                    await conn.execute(sql)
                for sql in OBSERVE_SQL:
                    await conn.execute(sql)
                settings = await pg_settings(conn)
                await conn.execute(f"CREATE DATABASE {REPLAY_DB}")
            replay_pool = await db.open_pool(
                make_conninfo(pg.url, dbname=REPLAY_DB), min_size=2, max_size=4, migrate=MIGRATIONS
            )
            log = EventLog(pool)
            ph = _Phases()
            t0 = time.perf_counter()
            await _single(pool, log, ph)
            await _batched(pool, log, ph)
            replay = await _replay(replay_pool, EventLog(replay_pool), ph)
            wall = time.perf_counter() - t0
        finally:
            if replay_pool is not None:
                await replay_pool.close()
            await pool.close()

    server_log = log_mentions("eventlog", LOG_NEEDLES)
    sc = settings.get("synchronous_commit", "?")
    note = f"synchronous_commit={sc}, fsync={settings.get('fsync')}"
    rows: list[Row] = []
    for w in WRITERS:
        rows.append(Row(BENCH, f"single append, {w} writer(s), 1 event/txn", ph.rate(f"append x{w}"),
                        "events/s", f"bare INSERT x{w}", ph.rate(f"insert x{w}"), "ratio",
                        RATIO_TARGET, note))  # fmt: skip
    for w in WRITERS:
        rows.append(Row(BENCH, f"(diag) checked single append (head unknown), {w} writer(s)",
                        ph.rate(f"checked x{w}"), "events/s", f"bare INSERT x{w}", ph.rate(f"insert x{w}"),
                        note="INSERT..SELECT with the version lookup: a stream's first append"))  # fmt: skip
    rows.append(Row(BENCH, f"append_batch, {BATCH} streams x 1 event/txn", ph.rate("append_batch"),
                    "events/s", f"bare COPY {BATCH} rows/txn", ph.rate("copy"), "ratio", RATIO_TARGET, note))  # fmt: skip
    rows.append(Row(BENCH, f"append, 1 stream x {BATCH} events/txn", ph.rate("append 1 stream"),
                    "events/s", f"bare COPY {BATCH} rows/txn", ph.rate("copy"), "ratio", RATIO_TARGET, note))  # fmt: skip
    rows.append(Row(BENCH, f"(diag) bare INSERT..SELECT jsonb_array_elements, {BATCH}/txn",
                    ph.rate("jsonb insert"), "events/s", f"bare COPY {BATCH} rows/txn",
                    ph.rate("copy"), note="no function, no version check, no ON CONFLICT"))  # fmt: skip
    rows.append(Row(BENCH, f"replay: catch_up + handle_batch (1 unnest upsert/page), pages of {PAGE}",
                    ph.rate("catch_up upsert page"), "events/s", "bare SELECT + unnest upsert/page",
                    ph.rate("bare select+upsert page"), "min", REPLAY_TARGET,
                    f"{replay['replay_events']} events"))  # fmt: skip
    rows.append(Row(BENCH, "(diag) replay: catch_up + handle (1 upsert/event, pipelined)",
                    ph.rate("catch_up upsert per event"), "events/s", "bare SELECT paged read",
                    ph.rate("bare select")))  # fmt: skip
    rows.append(Row(BENCH, "(diag) replay: catch_up, no-op page handler",
                    ph.rate("catch_up noop page"), "events/s", "bare SELECT paged read",
                    ph.rate("bare select")))  # fmt: skip
    rows.append(Row(BENCH, "(diag) replay: read_all only", ph.rate("read_all"), "events/s",
                    "bare SELECT paged read", ph.rate("bare select")))  # fmt: skip
    rows.append(Row(BENCH, "(diag) replay: read_all only, before the first ANALYZE",
                    ph.rate("read_all unanalyzed"), "events/s", "bare SELECT paged read",
                    ph.rate("bare select"), note="one pass, not interleaved"))  # fmt: skip
    context = {
        "postgres": settings, "phase_s": PHASE_S, "rounds": ROUNDS, "batch": BATCH,
        "wall_s": round(wall, 1), "replay": replay, "server_log": server_log,
        "phases": {k: {"items": ph.items[k], "seconds": round(ph.secs[k], 3),
                       "rate": round(ph.rate(k), 1),
                       "p50_ms": round(1000 * percentile(ph.lat[k], 50), 3) if ph.lat[k] else None,
                       "p99_ms": round(1000 * percentile(ph.lat[k], 99), 3) if ph.lat[k] else None}
                   for k in ph.items},
    }  # fmt: skip
    save(BENCH, rows, context)
    return rows


if __name__ == "__main__":
    cli(BENCH, run)
