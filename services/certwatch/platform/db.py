"""Connection pools. Created in a process's bootstrap, never at import time."""

from __future__ import annotations

from typing import Any

from psycopg_pool import AsyncConnectionPool

from certwatch.platform import migrations


async def open_pool(
    url: str, *, min_size: int = 1, max_size: int = 10, migrate: bool = True
) -> AsyncConnectionPool[Any]:
    """Open a pool with autocommit connections; apply pending migrations first."""
    pool: AsyncConnectionPool[Any] = AsyncConnectionPool(
        url, min_size=min_size, max_size=max_size, open=False, kwargs={"autocommit": True},
        name="certwatch",
    )  # fmt: skip
    await pool.open(wait=True, timeout=30)
    if migrate:
        async with pool.connection() as conn:
            await migrations.apply(conn)
    return pool
