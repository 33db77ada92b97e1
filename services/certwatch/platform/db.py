"""Connection pools. Created in a process's bootstrap, never at import time.

Array parameters go in binary (`%b::uuid[]`, `ANY(%b)`): psycopg quotes each element of a
text-format array in Python, 2.4 µs an element here against 0.6 µs in binary, and
projections pass arrays of a page's worth of rows.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any

import orjson
import psycopg
from psycopg import adapt, postgres, pq
from psycopg.abc import Buffer, Loader
from psycopg.types.json import set_json_dumps
from psycopg.types.numeric import IntLoader
from psycopg_pool import AsyncConnectionPool

from certwatch.platform import migrations

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


async def open_pool(
    url: str, *, min_size: int = 1, max_size: int = 10, migrate: bool = True
) -> AsyncConnectionPool[Any]:
    """Open a pool with autocommit connections; apply pending migrations first."""
    pool: AsyncConnectionPool[Any] = AsyncConnectionPool(
        url, min_size=min_size, max_size=max_size, open=False, kwargs={"autocommit": True},
        name="certwatch", configure=_configure,
    )  # fmt: skip
    await pool.open(wait=True, timeout=30)
    if migrate:
        async with pool.connection() as conn:
            await migrations.apply(conn)
    return pool


@contextlib.asynccontextmanager
async def snapshot(pool: AsyncConnectionPool[Any]) -> AsyncIterator[psycopg.AsyncConnection[Any]]:
    """A read-only transaction on one snapshot: every query of an answer sees the log at the
    same position (under READ COMMITTED each statement would see a projection's page that
    committed between them, e.g. a new ownership change beside the old certificate)."""
    async with pool.connection() as conn, conn.transaction():
        await conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        yield conn
