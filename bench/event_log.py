"""Event-log throughput: single appends, batched appends, replay; each next to a bare reference.

Run alone: `.venv/bin/python -m bench.event_log` (from the repo root).

PostgreSQL is freshly started with durable settings (fsync on, synchronous_commit as
configured by default: on) — what production gets. The references run on the same server,
in the same database, interleaved with the measured phases round by round so drift (table
growth, checkpoints, a noisy neighbour) hits both sides alike:

- single appends: `EventLog.append` (one event, one transaction) vs a plain
  `INSERT ... RETURNING position` into `bench_bare_events`, a copy of `events` with the
  same columns, constraints and indexes but no function, lock or NOTIFY;
- batched appends: `append_batch` (500 streams x 1 event) and `append` (500 events, one
  stream) vs `COPY` of 500 rows into the bare table in one transaction;
- replay: `projection.catch_up` (pages of 2000) with a handler doing one real upsert per
  event vs a bare `SELECT ... ORDER BY position` paged read of the same rows.
"""

from __future__ import annotations

import itertools
import time
import uuid
from typing import Any

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
from certwatch.platform.eventlog import EventLog
from certwatch.platform.events import NewEvent, RecordedEvent, dumps

BENCH = "event_log"
PHASE_S = 2.0  # seconds per measured phase
ROUNDS = 2  # interleaved rounds: measured, reference, measured, reference
BATCH = 500
REPLAY_EVENTS = 30_000
PAGE = 2000
REPLAY_TARGET = 50_000.0
RATIO_TARGET = 0.80

ACCOUNT = str(uuid.uuid4())
META = {"account_id": ACCOUNT, "traceparent": "00-" + "ab" * 16 + "-" + "cd" * 8 + "-01"}
T_SINGLE, T_BATCH, T_BULK = "BenchSingleAppended", "BenchProbeCompleted", "BenchBulkImported"
TYPES = [T_SINGLE, T_BATCH, T_BULK]

_COLUMNS = (
    "position, event_id, stream_id, stream_version, event_type, schema_version, data,"
    " metadata, recorded_at"
)
_BARE_COLS = "event_id, stream_id, stream_version, event_type, schema_version, data, metadata"
SETUP_SQL = [
    "CREATE SEQUENCE bench_bare_seq AS bigint",
    # same columns, defaults, CHECKs, PK, UNIQUEs and (event_type, position) index as events
    "CREATE TABLE bench_bare_events (LIKE events INCLUDING DEFAULTS INCLUDING CONSTRAINTS"
    " INCLUDING INDEXES)",
    "ALTER TABLE bench_bare_events ALTER position SET DEFAULT nextval('bench_bare_seq')",
    "CREATE TABLE bench_projection (stream_id text PRIMARY KEY, last_position bigint NOT NULL,"
    " n integer NOT NULL)",
]
BARE_INSERT = (
    f"INSERT INTO bench_bare_events ({_BARE_COLS}) VALUES (%s, %s, %s, %s, 1, %s::jsonb,"
    " %s::jsonb) RETURNING position"
)
BARE_COPY = f"COPY bench_bare_events ({_BARE_COLS}) FROM STDIN"
# diagnostic: the jsonb transport append_events uses, without plpgsql, lock or NOTIFY
BARE_JSONB_INSERT = (
    f"INSERT INTO bench_bare_events ({_BARE_COLS})"
    " SELECT (e->>'event_id')::uuid, e->>'stream', (e->>'v')::integer, e->>'type',"
    " (e->>'schema_version')::smallint, e->'data', coalesce(e->'metadata', '{}'::jsonb)"
    " FROM jsonb_array_elements(%s::jsonb) e RETURNING position"
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
    for writers in (1, 4):
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

            for name, op in ((f"append x{writers}", append), (f"insert x{writers}", bare)):
                items, secs, lat = await timed_workers(writers, op, seconds=PHASE_S, max_ops=200_000)
                ph.add(name, items, secs, lat)


async def _batched(pool: AsyncConnectionPool[Any], log: EventLog, ph: _Phases) -> None:
    versions = itertools.count(1)
    bulk = itertools.count()

    async def append_batch(w: int, i: int) -> int:
        batch = [(f"probe-{j}", [NewEvent(T_BATCH, payload(j), metadata=META)], None)
                 for j in range(BATCH)]  # fmt: skip
        return len(await log.append_batch(batch))

    async def append_one_stream(w: int, i: int) -> int:
        events = [NewEvent(T_BULK, payload(j), metadata=META) for j in range(BATCH)]
        return len(await log.append(f"bulk-{next(bulk)}", events, expected_version=0))

    async def copy(w: int, i: int) -> int:
        version = next(versions)
        async with pool.connection() as conn, conn.transaction(), conn.cursor() as cur:
            async with cur.copy(BARE_COPY) as cp:
                for j in range(BATCH):
                    await cp.write_row((uuid.uuid4(), f"copy-{j}", version, T_BATCH, 1,
                                        dumps(payload(j)), dumps(META)))  # fmt: skip
        return BATCH

    async def jsonb_insert(w: int, i: int) -> int:
        version = next(versions)
        body = dumps([
            {"event_id": str(uuid.uuid4()), "stream": f"copy-{j}", "v": version, "type": T_BATCH,
             "schema_version": 1, "data": payload(j), "metadata": META}
            for j in range(BATCH)
        ])  # fmt: skip
        async with pool.connection() as conn:
            return len(await (await conn.execute(BARE_JSONB_INSERT, (body,))).fetchall())

    for _ in range(ROUNDS):
        for name, op in (("append_batch", append_batch), ("append 1 stream", append_one_stream),
                         ("copy", copy), ("jsonb insert", jsonb_insert)):  # fmt: skip
            items, secs, lat = await timed_workers(1, op, seconds=PHASE_S, max_ops=10_000)
            ph.add(name, items, secs, lat)


async def _noop(conn: Any, event: RecordedEvent) -> None:
    return None


async def _upsert(conn: Any, event: RecordedEvent) -> None:
    await conn.execute(UPSERT, (event.stream_id, event.position))


async def catch_up_pipelined(
    event_log: EventLog, proj: projection.Projection, *, upto: int, page: int = PAGE
) -> int:
    """What-if (proposed patch): `projection.catch_up` with the page's handler statements
    sent in psycopg pipeline mode, so one event is not one network round trip. Same SQL,
    same transaction per page, same checkpoint handling."""
    applied = 0
    async with event_log.pool.connection() as conn:
        target = upto
        while True:
            async with conn.transaction():
                await conn.execute(
                    "INSERT INTO checkpoints (name, position) VALUES (%s, 0) ON CONFLICT DO NOTHING",
                    (proj.name,),
                )
                cur = await conn.execute(
                    "SELECT position FROM checkpoints WHERE name = %s FOR UPDATE", (proj.name,)
                )
                row = await cur.fetchone()
                start = int(row[0]) if row else 0
                if start >= target:
                    return applied
                events = await event_log.read_all(
                    start, limit=page, types=proj.event_types, upto=target, conn=conn
                )
                async with conn.pipeline():
                    for event in events:
                        await projection._apply(proj, conn, event)
                applied += len(events)
                reached = events[-1].position if len(events) == page else target
                await conn.execute(
                    "UPDATE checkpoints SET position = %s, updated_at = now() WHERE name = %s",
                    (reached, proj.name),
                )
            if reached >= target:
                return applied


async def _replay(pool: AsyncConnectionPool[Any], log: EventLog, ph: _Phases) -> dict[str, Any]:
    async with pool.connection() as conn:
        total = int((await (await conn.execute("SELECT count(*) FROM events")).fetchone())[0])
        n = min(total, REPLAY_EVENTS)
        cur = await conn.execute(
            "SELECT position FROM events ORDER BY position OFFSET %s LIMIT 1", (n - 1,)
        )
        upto = int((await cur.fetchone())[0])
        plan = await (await conn.execute(
            "EXPLAIN SELECT " + _COLUMNS + " FROM events WHERE position > 0 AND position <= %s"
            " AND event_type = ANY(%s) ORDER BY position LIMIT 2000", (upto, TYPES))).fetchall()  # fmt: skip

    async def bare_select() -> int:
        got, after = 0, 0
        async with pool.connection() as conn:
            while after < upto:
                cur = await conn.execute(
                    f"SELECT {_COLUMNS} FROM events WHERE position > %s AND position <= %s"
                    f" ORDER BY position LIMIT {PAGE}", (after, upto))  # fmt: skip
                rows = await cur.fetchall()
                if not rows:
                    break
                got, after = got + len(rows), rows[-1][0]
        return got

    async def read_all() -> int:
        got, after = 0, 0
        while after < upto:
            events = await log.read_all(after, limit=PAGE, types=TYPES, upto=upto)
            if not events:
                break
            got, after = got + len(events), events[-1].position
        return got

    runs = itertools.count()

    async def reset() -> None:
        async with pool.connection() as conn:
            await conn.execute("TRUNCATE bench_projection")

    async def catch_up(handler: Any, pipelined: bool = False) -> int:
        await reset()
        proj = projection.Projection(f"bench.replay.{next(runs)}", TYPES, handler)
        if pipelined:
            return await catch_up_pipelined(log, proj, upto=upto)
        return await projection.catch_up(log, proj, upto=upto, page=PAGE)

    phases = (
        ("bare select", bare_select),
        ("read_all", read_all),
        ("catch_up noop", lambda: catch_up(_noop)),
        ("catch_up upsert", lambda: catch_up(_upsert)),
        ("catch_up upsert pipelined", lambda: catch_up(_upsert, pipelined=True)),
    )
    counts: dict[str, int] = {}
    for _ in range(ROUNDS):
        for name, fn in phases:
            async with bounded(120, f"replay phase {name}"):
                t0 = time.perf_counter()
                got = await fn()
                ph.add(name, got, time.perf_counter() - t0, [])
            counts[name] = got
    async with pool.connection() as conn:
        cur = await conn.execute("SELECT coalesce(sum(n), 0) FROM bench_projection")
        upserted = int((await cur.fetchone())[0])
    return {"replay_events": n, "replay_upto": upto, "rows_per_phase": counts,
            "last_projection_rows_applied": upserted, "read_all_plan": [r[0] for r in plan]}  # fmt: skip


async def run() -> list[Row]:
    with fresh_servers("eventlog") as (pg, _nats):
        pool = await db.open_pool(pg.url, min_size=5, max_size=8)
        try:
            async with pool.connection() as conn:
                for sql in SETUP_SQL:
                    await conn.execute(sql)
                for sql in OBSERVE_SQL:
                    await conn.execute(sql)
                settings = await pg_settings(conn)
            log = EventLog(pool)
            ph = _Phases()
            t0 = time.perf_counter()
            await _single(pool, log, ph)
            await _batched(pool, log, ph)
            replay = await _replay(pool, log, ph)
            wall = time.perf_counter() - t0
        finally:
            await pool.close()

    server_log = log_mentions("eventlog", LOG_NEEDLES)
    sc = settings.get("synchronous_commit", "?")
    note = f"synchronous_commit={sc}, fsync={settings.get('fsync')}"
    rows: list[Row] = []
    for w in (1, 4):
        rows.append(Row(BENCH, f"single append, {w} writer(s), 1 event/txn", ph.rate(f"append x{w}"),
                        "events/s", f"bare INSERT x{w}", ph.rate(f"insert x{w}"), "ratio",
                        RATIO_TARGET, note))  # fmt: skip
    rows.append(Row(BENCH, f"append_batch, {BATCH} streams x 1 event/txn", ph.rate("append_batch"),
                    "events/s", f"bare COPY {BATCH} rows/txn", ph.rate("copy"), "ratio", RATIO_TARGET, note))  # fmt: skip
    rows.append(Row(BENCH, f"append, 1 stream x {BATCH} events/txn", ph.rate("append 1 stream"),
                    "events/s", f"bare COPY {BATCH} rows/txn", ph.rate("copy"), "ratio", RATIO_TARGET, note))  # fmt: skip
    rows.append(Row(BENCH, f"(diag) bare INSERT..SELECT jsonb_array_elements, {BATCH}/txn",
                    ph.rate("jsonb insert"), "events/s", f"bare COPY {BATCH} rows/txn",
                    ph.rate("copy"), note="no function, lock or NOTIFY"))  # fmt: skip
    rows.append(Row(BENCH, f"replay: catch_up + 1 upsert/event, pages of {PAGE}",
                    ph.rate("catch_up upsert"), "events/s", "bare SELECT paged read",
                    ph.rate("bare select"), "min", REPLAY_TARGET, f"{replay['replay_events']} events"))  # fmt: skip
    rows.append(Row(BENCH, "(diag) replay: read_all only", ph.rate("read_all"), "events/s",
                    "bare SELECT paged read", ph.rate("bare select")))  # fmt: skip
    rows.append(Row(BENCH, "(diag) replay: catch_up, no-op handler", ph.rate("catch_up noop"),
                    "events/s", "bare SELECT paged read", ph.rate("bare select")))  # fmt: skip
    rows.append(Row(BENCH, "(what-if) replay: catch_up + upsert, pipeline mode",
                    ph.rate("catch_up upsert pipelined"), "events/s", "bare SELECT paged read",
                    ph.rate("bare select"), "min", REPLAY_TARGET, "proposed patch, see README"))  # fmt: skip
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
