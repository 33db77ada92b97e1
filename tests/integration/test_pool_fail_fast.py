"""The pool inside an RPC: a busy pool is waited for, a cancelled wait leaks nothing."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import pytest

from certwatch.platform import db


@pytest.fixture
async def one_connection(database_url: str) -> AsyncIterator[db.Pool]:
    pool = await db.open_pool(database_url, max_size=1)
    try:
        yield pool
    finally:
        await pool.close()


async def _hold(pool: db.Pool, seconds: float, held: asyncio.Event) -> None:
    async with pool.connection():
        held.set()
        await asyncio.sleep(seconds)  # the busy caller under test holds it this long


async def test_a_busy_pool_is_waited_for_not_reported_unavailable(one_connection: db.Pool) -> None:
    held = asyncio.Event()
    holder = asyncio.create_task(_hold(one_connection, 0.8, held))
    await held.wait()
    started = time.monotonic()
    with db.failing_fast():
        async with one_connection.connection() as conn:
            await conn.execute("SELECT 1")
    assert time.monotonic() - started >= 0.5  # it waited past the probe for the holder
    await holder


async def test_a_cancelled_wait_gives_back_what_it_got(one_connection: db.Pool) -> None:
    held = asyncio.Event()
    holder = asyncio.create_task(_hold(one_connection, 0.4, held))
    await held.wait()

    async def wait_in_rpc() -> None:
        with db.failing_fast():
            async with one_connection.connection():
                await asyncio.sleep(60)

    for cancel_after in (0.1, 0.3, 0.45):  # before, during and after the reachability probe
        waiter = asyncio.create_task(wait_in_rpc())
        await asyncio.sleep(cancel_after)
        waiter.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiter
    await holder
    async with asyncio.timeout(2):  # the one connection is back in the pool
        async with one_connection.connection() as conn:
            await conn.execute("SELECT 1")
