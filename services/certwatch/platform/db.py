"""Connection pools. Created in a process's bootstrap, never at import time.

While serving an RPC (`failing_fast()`), a pool does not make the caller wait its 30 s
timeout for a database that is down: see `Pool`.

Array parameters go in binary (`%b::uuid[]`, `ANY(%b)`): psycopg quotes each element of a
text-format array in Python, 2.4 µs an element here against 0.6 µs in binary, and
projections pass arrays of a page's worth of rows.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import logging
import time
from collections.abc import AsyncIterator, Iterator, Sequence
from typing import Any

import orjson
import psycopg
from psycopg import adapt, postgres, pq
from psycopg.abc import Buffer, Loader
from psycopg.types.json import set_json_dumps
from psycopg.types.numeric import IntLoader
from psycopg_pool import AsyncConnectionPool

from certwatch.platform import migrations
from certwatch.platform.errors import TransientStoreError

log = logging.getLogger(__name__)

# Inside `failing_fast()`: how long to wait for a pooled connection before asking whether
# PostgreSQL is reachable at all, how long that question may take, and for how long its
# answer stands (one connection attempt per pool per second, however many callers wait).
_FAST_WAIT_S = 0.25
_PROBE_TIMEOUT_S = 1.0
_PROBE_TTL_S = 1.0

_failing_fast: contextvars.ContextVar[bool] = contextvars.ContextVar("db_failing_fast", default=False)


@contextlib.contextmanager
def failing_fast() -> Iterator[None]:
    """Within this block (an RPC being served) an unreachable database raises
    `TransientStoreError` within about a second instead of a `PoolTimeout` after 30 s."""
    token = _failing_fast.set(True)
    try:
        yield
    finally:
        _failing_fast.reset(token)


# Transaction ids (xid8, the first half of every cursor) load as Python ints, with the same
# (C) loader as bigint: a replay reads one per event.
_XID8 = postgres.types["xid8"].oid
_INT_LOADER: type[Loader] = (
    postgres.adapters.get_loader(postgres.types["int8"].oid, pq.Format.TEXT) or IntLoader
)


class _JsonLoader(adapt.Loader):
    """json and jsonb (text format) straight into orjson, which reads the buffer psycopg
    hands over as it is (psycopg's own loader copies it to bytes first: a third more time)."""

    def load(self, data: Buffer) -> Any:
        return orjson.loads(data)


async def _configure(conn: psycopg.AsyncConnection[Any]) -> None:
    """jsonb through orjson: decoding event payloads is most of a replay's Python time
    (reads of the log run about 1.7x faster than with the standard library)."""
    for name in ("json", "jsonb"):
        conn.adapters.register_loader(postgres.types[name].oid, _JsonLoader)
    set_json_dumps(_dumps, conn)
    conn.adapters.register_loader(_XID8, _INT_LOADER)


def _dumps(value: Any) -> str:
    return orjson.dumps(value).decode()


class Pool(AsyncConnectionPool[Any]):
    """A pool whose RPC callers learn at once that PostgreSQL is down.

    psycopg_pool waits `timeout` for a connection whatever the reason; with the database
    down that is a 30 s hang. Inside `failing_fast()` a wait past a quarter second asks
    PostgreSQL directly (one shared attempt, at most a second): unreachable raises
    `TransientStoreError`; reachable means the pool is only busy, and the wait goes on.
    """

    def __init__(self, url: str, **kwargs: Any) -> None:
        super().__init__(url, **kwargs)
        self._url = url
        self._probe: asyncio.Task[bool] | None = None
        self._probe_at = 0.0

    async def getconn(self, timeout: float | None = None) -> Any:
        conn = await self._getconn(timeout)
        task = asyncio.current_task()
        if task is not None and task.cancelling():
            # Python 3.11's `asyncio.wait_for` (which psycopg_pool waits with) drops a
            # cancellation that arrives as the connection does: give it back, stay cancelled.
            await self.putconn(conn)
            raise asyncio.CancelledError
        return conn

    async def _getconn(self, timeout: float | None) -> Any:
        if not _failing_fast.get():
            return await super().getconn(timeout)
        # The wait goes on in its own task while the server is asked, keeping its place in
        # the pool's queue; whatever ends it early hands a connection it got back.
        waiting = asyncio.ensure_future(super().getconn(timeout))
        try:
            done, _ = await asyncio.wait({waiting}, timeout=_FAST_WAIT_S)
            if not done and not await self._reachable():
                raise TransientStoreError("the database is unavailable; retry shortly")
            return await waiting
        except BaseException:
            waiting.cancel()
            if waiting.done() and not waiting.cancelled() and waiting.exception() is None:
                await self.putconn(waiting.result())
            raise

    async def _reachable(self) -> bool:
        """Whether PostgreSQL accepts a connection now (one attempt shared, cached briefly)."""
        now = time.monotonic()
        if self._probe is None or (self._probe.done() and now - self._probe_at > _PROBE_TTL_S):
            self._probe_at = now
            self._probe = asyncio.create_task(self._try_connect(), name="db-reachability")
        return await asyncio.shield(self._probe)

    async def _try_connect(self) -> bool:
        try:
            async with asyncio.timeout(_PROBE_TIMEOUT_S):
                conn = await psycopg.AsyncConnection.connect(self._url, connect_timeout=1)
        except (psycopg.Error, OSError, TimeoutError) as exc:
            log.warning("database unreachable: %s", str(exc).strip() or type(exc).__name__)
            return False
        await conn.close()
        return True


async def open_pool(url: str, *, min_size: int = 1, max_size: int = 10, migrate: Sequence[str] = ()) -> Pool:
    """Open a pool with autocommit connections; first apply the pending migrations of the
    components in `migrate` (see `migrations`)."""
    pool = Pool(
        url, min_size=min_size, max_size=max_size, open=False, kwargs={"autocommit": True},
        name="certwatch", configure=_configure,
    )  # fmt: skip
    await pool.open(wait=True, timeout=30)
    if migrate:
        async with pool.connection() as conn:
            await migrations.apply(conn, migrate)
    return pool


@contextlib.asynccontextmanager
async def snapshot(pool: AsyncConnectionPool[Any]) -> AsyncIterator[psycopg.AsyncConnection[Any]]:
    """A read-only transaction on one snapshot: every query of an answer sees the log at the
    same position (under READ COMMITTED each statement would see a projection's page that
    committed between them, e.g. a new ownership change beside the old certificate)."""
    async with pool.connection() as conn, conn.transaction():
        await conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        yield conn
