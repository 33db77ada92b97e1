"""Probe observations: every probe's outcome per address, as telemetry with a retention.

The event log keeps facts of record forever; a probe that changes nothing is not one. Its
outcome is a row of `probe_observations` (platform migration 008), partitioned by day:
partitions are made `AHEAD_DAYS` ahead and dropped whole (DROP TABLE, no DELETE, no
vacuum) once every row in them is older than the retention (`Settings.
observation_retention_days`, default 400). `ObservationMaintainer` does both, in any
service, any number of replicas: the work runs under a transaction-scoped advisory lock
and is idempotent. Rows are written with COPY; a row whose day has no partition yet (the
maintainer has not run, a probe just after midnight) makes the write create it and retry.

A row is about 90 bytes in the heap plus a few in the index (measured in bench/
observations.py and tests/integration/test_observations.py): codes are smallints from the
vocabularies below (0 = none; append only, never renumber), causes a bit mask, the chain a
reference (`platform.certificates`), timings integer microseconds.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import psycopg
from psycopg_pool import AsyncConnectionPool

from certwatch.platform.eventlog import Conn
from certwatch.platform.health import Progress

log = logging.getLogger(__name__)

TABLE = "probe_observations"
AHEAD_DAYS = 7
DEFAULT_RETENTION_DAYS = 400
_LOCK_KEY = 0x6F627376  # "obsv"

# Code n is the (n-1)th name; 0 is none. Append only: stored rows keep their numbers.
STATUSES: tuple[str, ...] = ("SECURE", "ABNORMAL", "ENABLE_FAILED")
# In the rules' precedence order (rules.precedence) (most important first) as of this schema, so a mask
# decodes in verdict order; a cause added later goes at the end whatever its rank.
CAUSES: tuple[str, ...] = (
    "INVALID_IP", "INVALID_DOMAIN", "CONNECTION_FAILURE", "INVALID_PORT",
    "NETWORK_CONNECTION_FAILURE", "NO_SSL_CERTIFICATE", "EXPIRED", "CHAIN_VALIDATION_FAILED",
    "CERTIFICATE_MISMATCH", "ABOUT_TO_EXPIRE",
)  # fmt: skip
PHASES: tuple[str, ...] = ("policy", "tcp", "tls", "done", "dns")
ERROR_KINDS: tuple[str, ...] = ("policy_refused", "refused", "timeout", "unreachable", "no_tls", "tls_error")
TLS_VERSIONS: tuple[str, ...] = ("SSLv3", "TLSv1", "TLSv1.1", "TLSv1.2", "TLSv1.3")

_COLUMNS = (
    "observed_at, domain_id, chain_id, connect_us, handshake_us, status, primary_cause, causes,"
    " phase, error_kind, tls_version, ip, detail"
)


@dataclass(frozen=True, slots=True)
class Observation:
    """What one probe saw at one address (`ip` None: the name resolved to nothing)."""

    observed_at: datetime
    domain_id: uuid.UUID | str  # a str as a writer has it (canonical form); decoded rows: UUID
    ip: str | None
    phase: str  # PHASES
    status: str  # STATUSES: this address's own verdict
    causes: tuple[str, ...] = ()  # CAUSES, most important first
    primary_cause: str | None = None
    error_kind: str | None = None
    tls_version: str | None = None
    connect_ms: float | None = None
    handshake_ms: float | None = None
    chain_id: int = 0  # platform.certificates.chain_id of the presented chain; 0: none
    detail: str = ""  # the error text, when the probe failed


def _code(vocabulary: tuple[str, ...], value: str | None, field: str) -> int:
    if value is None:
        return 0
    try:
        return vocabulary.index(value) + 1
    except ValueError:
        raise ValueError(f"{field}: {value!r} is not in the observation vocabulary") from None


def _name(vocabulary: tuple[str, ...], code: int) -> str | None:
    return vocabulary[code - 1] if code else None


def _us(ms: float | None) -> int | None:
    return None if ms is None else round(ms * 1000)


def encode(o: Observation) -> tuple[Any, ...]:
    """The row, in `_COLUMNS` order. An unknown TLS version is stored as none (0)."""
    mask = 0
    for cause in o.causes:
        mask |= 1 << (_code(CAUSES, cause, "causes") - 1)
    tls = TLS_VERSIONS.index(o.tls_version) + 1 if o.tls_version in TLS_VERSIONS else 0
    return (
        o.observed_at, o.domain_id, o.chain_id, _us(o.connect_ms), _us(o.handshake_ms),
        _code(STATUSES, o.status, "status"), _code(CAUSES, o.primary_cause, "primary_cause"),
        mask, _code(PHASES, o.phase, "phase"), _code(ERROR_KINDS, o.error_kind, "error_kind"),
        tls, o.ip, o.detail,
    )  # fmt: skip


def decode(row: Sequence[Any]) -> Observation:
    at, domain_id, chain, connect, handshake, status, primary, mask, phase, error, tls, ip, detail = row
    causes = tuple(c for i, c in enumerate(CAUSES) if mask & (1 << i))
    return Observation(
        observed_at=at, domain_id=domain_id, ip=None if ip is None else str(ip),
        phase=_name(PHASES, phase) or "", status=_name(STATUSES, status) or "", causes=causes,
        primary_cause=_name(CAUSES, primary), error_kind=_name(ERROR_KINDS, error), tls_version=_name(TLS_VERSIONS, tls),
        connect_ms=None if connect is None else connect / 1000,
        handshake_ms=None if handshake is None else handshake / 1000, chain_id=chain, detail=detail,
    )  # fmt: skip


def pack(observations: Sequence[Observation]) -> dict[str, Any]:
    """One probe's observations (same domain, same time) as a compact message body: the
    row codes per address, about 200 bytes of JSON for one address (`unpack` inverts it)."""
    first = observations[0]
    return {
        "d": str(first.domain_id), "t": round(first.observed_at.timestamp() * 1_000_000),
        "a": [list(encode(o)[2:]) for o in observations],
    }  # fmt: skip


def unpack(body: dict[str, Any]) -> list[Observation]:
    at = datetime.fromtimestamp(body["t"] / 1_000_000, UTC)
    domain_id = uuid.UUID(body["d"])
    return [decode((at, domain_id, *row)) for row in body["a"]]


def partition_name(day: date) -> str:
    return f"{TABLE}_{day:%Y%m%d}"


def _day_start(day: date) -> datetime:
    return datetime.combine(day, time(), tzinfo=UTC)


async def write(conn: Conn, observations: Sequence[Observation]) -> int:
    """COPY the rows (in a savepoint of the caller's transaction, if any) and move each
    domain's `probe_latest` forward; return the count."""
    if not observations:
        return 0
    rows = [encode(o) for o in observations]
    try:
        await _copy(conn, rows)
    except psycopg.errors.CheckViolation:  # "no partition of relation ... found for row"
        await ensure_partitions(conn, {o.observed_at.astimezone(UTC).date() for o in observations})
        await _copy(conn, rows)
    latest: dict[str, datetime] = {}
    for o in observations:
        key = str(o.domain_id)  # canonical form: sorts as the UUIDs do
        latest[key] = max(o.observed_at, latest.get(key, o.observed_at))
    ordered = sorted(latest)  # one lock order for every writer: no deadlock between batches
    await conn.execute(
        "INSERT INTO probe_latest (domain_id, observed_at)"
        " SELECT * FROM unnest(%b::uuid[], %b::timestamptz[])"
        " ON CONFLICT (domain_id) DO UPDATE SET observed_at = excluded.observed_at"
        " WHERE probe_latest.observed_at < excluded.observed_at",
        (ordered, [latest[d] for d in ordered]),
    )
    return len(rows)


async def last_observed(conn: Conn, domain_ids: Iterable[uuid.UUID | str]) -> dict[str, datetime]:
    """When each of these domains was last observed (absent: never)."""
    cur = await conn.execute(
        "SELECT domain_id::text, observed_at FROM probe_latest WHERE domain_id = ANY(%b::uuid[])",
        ([str(d) for d in domain_ids],),
    )
    return {row[0]: row[1] for row in await cur.fetchall()}


async def _copy(conn: Conn, rows: Sequence[tuple[Any, ...]]) -> None:
    async with (
        conn.transaction(),
        conn.cursor() as cur,
        cur.copy(f"COPY {TABLE} ({_COLUMNS}) FROM STDIN") as copy,
    ):
        for row in rows:
            await copy.write_row(row)


async def read(
    conn: Conn, domain_id: uuid.UUID, since: datetime, until: datetime, *, limit: int = 1000
) -> list[Observation]:
    """A domain's observations in [since, until), oldest first."""
    cur = await conn.execute(
        f"SELECT {_COLUMNS} FROM {TABLE} WHERE domain_id = %s AND observed_at >= %s"
        " AND observed_at < %s ORDER BY observed_at, ip LIMIT %s",
        (domain_id, since, until, limit),
    )
    return [decode(row) for row in await cur.fetchall()]


async def partitions(conn: Conn) -> list[date]:
    """The days that have a partition, oldest first."""
    cur = await conn.execute(
        "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid"
        " WHERE i.inhparent = %s::regclass",
        (TABLE,),
    )
    prefix = f"{TABLE}_"
    days = [datetime.strptime(r[0][len(prefix) :], "%Y%m%d").date() for r in await cur.fetchall()]
    return sorted(days)


async def ensure_partitions(conn: Conn, days: Iterable[date]) -> list[date]:
    """Create the missing partitions of these days; return the days created."""
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock(%s)", (_LOCK_KEY,))
        existing = set(await partitions(conn))
        created = sorted(set(days) - existing)
        for day in created:
            await conn.execute(
                f"CREATE TABLE {partition_name(day)} PARTITION OF {TABLE}"
                f" FOR VALUES FROM ('{_day_start(day).isoformat()}') TO"
                f" ('{_day_start(day + timedelta(days=1)).isoformat()}')"
            )
    return created


@dataclass(frozen=True, slots=True)
class Maintenance:
    created: tuple[date, ...]
    dropped: tuple[date, ...]


async def maintain(
    conn: Conn, *, today: date, retention_days: int = DEFAULT_RETENTION_DAYS, ahead_days: int = AHEAD_DAYS
) -> Maintenance:
    """Partitions for today and `ahead_days` after it; drop every partition whose rows are
    all older than `retention_days` (its day ended on or before today - retention)."""
    if retention_days < 1:
        raise ValueError(f"retention_days must be at least 1, got {retention_days}")
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock(%s)", (_LOCK_KEY,))
        created = await ensure_partitions(conn, [today + timedelta(days=n) for n in range(ahead_days + 1)])
        horizon = today - timedelta(days=retention_days)
        dropped = [day for day in await partitions(conn) if day + timedelta(days=1) <= horizon]
        for day in dropped:
            await conn.execute(f"DROP TABLE {partition_name(day)}")
    return Maintenance(tuple(created), tuple(dropped))


async def bytes_on_disk(conn: Conn) -> int:
    """Every partition's heap, indexes and TOAST, in bytes."""
    cur = await conn.execute(
        "SELECT coalesce(sum(pg_total_relation_size(relid)), 0)::bigint"
        " FROM pg_partition_tree(%s::regclass) WHERE isleaf",
        (TABLE,),
    )
    row = await cur.fetchone()
    return int(row[0]) if row else 0


class ObservationMaintainer:
    """A worker (`platform.service.Worker`) keeping the partitions: at start, then every
    `interval_s`. Any service may run it, in any number of replicas."""

    def __init__(
        self, pool: AsyncConnectionPool[Any], *, retention_days: int = DEFAULT_RETENTION_DAYS,
        interval_s: float = 3600.0, clock: Any = lambda: datetime.now(UTC),
    ) -> None:  # fmt: skip
        self._pool = pool
        self._retention_days = retention_days
        self._interval_s = interval_s
        self._clock = clock
        self._stop = asyncio.Event()
        self.progress = Progress()
        self.last: Maintenance | None = None

    @property
    def failing(self) -> bool:
        return self.progress.failing

    def stop(self) -> None:
        self._stop.set()

    async def run_once(self) -> Maintenance:
        async with self._pool.connection() as conn:
            done = await maintain(conn, today=self._clock().date(), retention_days=self._retention_days)
        if done.created or done.dropped:
            log.info("observation partitions: created %d, dropped %d", len(done.created), len(done.dropped),
                     extra={"partitions_created": [str(d) for d in done.created], "partitions_dropped": [str(d) for d in done.dropped]})  # fmt: skip
        self.last = done
        return done

    async def run(self) -> None:
        while not self._stop.is_set():
            try:
                await self.run_once()
                self.progress.advanced()
                wait = self._interval_s
            except psycopg.Error as exc:
                self.progress.failed(exc)
                log.warning("observation partitions: database unavailable", extra={"error": str(exc)})
                wait = min(self._interval_s, 5.0)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), wait)
