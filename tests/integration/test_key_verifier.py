"""API key verification against a real PostgreSQL: the cache, its revocation feed, and
what happens without the feed."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from typing import Any

import psycopg
import pytest
from psycopg_pool import AsyncConnectionPool

from certwatch.platform import auth
from certwatch.platform.localstack import free_port
from tests.support.stack import wait_for


@contextlib.asynccontextmanager
async def running(verifier: auth.KeyVerifier) -> AsyncIterator[auth.KeyVerifier]:
    task = asyncio.create_task(verifier.run())
    try:
        yield verifier
    finally:
        verifier.stop()
        await asyncio.wait_for(task, 5)


async def _key(pool: AsyncConnectionPool[Any]) -> tuple[str, str]:
    _, key = await auth.create_account(pool, f"a-{time.monotonic_ns()}")
    return f"Bearer {key}", auth.parse(key)[0]


def _revoke_silently(database_url: str, key_id: str) -> None:
    """Revoke with the trigger off: no verifier is told."""
    with psycopg.connect(database_url, autocommit=True) as conn, conn.transaction():
        conn.execute("ALTER TABLE api_keys DISABLE TRIGGER api_key_revoked")
        conn.execute("UPDATE api_keys SET revoked_at = now() WHERE key_id = %s", (key_id,))
        conn.execute("ALTER TABLE api_keys ENABLE TRIGGER api_key_revoked")


async def test_a_revocation_by_plain_sql_reaches_the_cache_at_once(
    pool: AsyncConnectionPool[Any], database_url: str
) -> None:
    async with running(auth.KeyVerifier(pool, ttl_s=60, url=database_url)) as verifier:
        await wait_for(lambda: _true(verifier.live))
        token, key_id = await _key(pool)
        await verifier.verify(token)  # cached for a minute
        with psycopg.connect(database_url, autocommit=True) as conn:
            conn.execute("UPDATE api_keys SET revoked_at = now() WHERE key_id = %s", (key_id,))

        async def refused() -> bool:
            with contextlib.suppress(auth.Unauthenticated):
                await verifier.verify(token)
                return False
            return True

        started = time.monotonic()
        await wait_for(refused, timeout=2, every=0.001)
        assert time.monotonic() - started < 0.5


async def test_while_the_feed_is_live_hits_are_cached_until_the_ttl(
    pool: AsyncConnectionPool[Any], database_url: str
) -> None:
    """The cache is real (a silent revocation is not seen at once) and the TTL bounds it."""
    async with running(auth.KeyVerifier(pool, ttl_s=1.0, url=database_url)) as verifier:
        await wait_for(lambda: _true(verifier.live))
        token, key_id = await _key(pool)
        await verifier.verify(token)
        _revoke_silently(database_url, key_id)
        assert (await verifier.verify(token)).key_id == key_id  # from the cache
        await asyncio.sleep(1.1)  # the TTL itself is what is under test
        with pytest.raises(auth.Unauthenticated):
            await verifier.verify(token)


async def test_without_the_feed_nothing_is_cached(pool: AsyncConnectionPool[Any], database_url: str) -> None:
    dead_feed = f"postgresql://certwatch@127.0.0.1:{free_port()}/certwatch"  # nothing listens there
    async with running(auth.KeyVerifier(pool, ttl_s=60, url=dead_feed)) as verifier:
        token, key_id = await _key(pool)
        await verifier.verify(token)
        assert not verifier.live
        _revoke_silently(database_url, key_id)
        with pytest.raises(auth.Unauthenticated):
            await verifier.verify(token)


async def test_the_feed_comes_back_after_its_connection_is_cut(
    pool: AsyncConnectionPool[Any], database_url: str
) -> None:
    async with running(auth.KeyVerifier(pool, ttl_s=60, url=database_url)) as verifier:
        await wait_for(lambda: _true(verifier.live))
        token, key_id = await _key(pool)
        await verifier.verify(token)
        with psycopg.connect(database_url, autocommit=True) as conn:
            conn.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                         " WHERE application_name = 'certwatch-key-revocations'")  # fmt: skip
        await wait_for(lambda: _true(not verifier.live), every=0.01)
        _revoke_silently(database_url, key_id)  # missed by the feed while it was down
        with pytest.raises(auth.Unauthenticated):  # the cache was dropped with the feed
            await verifier.verify(token)
        await wait_for(lambda: _true(verifier.live))


async def _true(value: bool) -> bool:
    return value
