"""The http-01 responders of two replicas (two pools, one database): an answer put on one is
served by the other until it is dropped or expires; a database that cannot take it fails the
challenge before the CA is asked to validate, and a CA's GET then gets 503, not a wrong 404."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from psycopg_pool import AsyncConnectionPool

from certwatch.contracts.hosting import FailureKind, Validation
from certwatch.hosting.acme_client import AcmeFailure
from certwatch.hosting.challenges import Solvers
from certwatch.hosting.http01 import Http01Responder
from certwatch.platform import db
from certwatch.platform.localstack import free_port
from certwatch.services import MIGRATIONS


async def _get(responder: Http01Responder, token: str) -> tuple[int, str]:
    url = f"http://127.0.0.1:{responder.port}/.well-known/acme-challenge/{token}"
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as s, s.get(url) as r:
        return r.status, await r.text()


@pytest.fixture
async def replicas(pool: AsyncConnectionPool[Any], database_url: str) -> AsyncIterator[list[Http01Responder]]:
    other = await db.open_pool(database_url, migrate=MIGRATIONS)
    responders = [Http01Responder(p, "127.0.0.1", free_port()) for p in (pool, other)]
    try:
        for r in responders:
            await r.start()
        yield responders
    finally:
        for r in responders:
            await r.close()
        await other.close()


async def test_an_answer_put_on_one_replica_is_served_by_the_other_until_dropped(
    replicas: list[Http01Responder], pool: AsyncConnectionPool[Any]
) -> None:
    a, b = replicas
    await asyncio.to_thread(a.put, "tok-1", "tok-1.thumbprint")  # as an ACME worker thread does
    assert await _get(a, "tok-1") == (200, "tok-1.thumbprint") and a.served_shared == 0  # its memory
    assert await _get(b, "tok-1") == (200, "tok-1.thumbprint") and b.served_shared == 1  # the table
    assert (await _get(b, "tok-2"))[0] == 404
    await asyncio.to_thread(a.drop, "tok-1")
    assert (await _get(b, "tok-1"))[0] == 404

    # An answer left by a replica that died before its cleanup: not served once expired, and
    # purged by the next answer put.
    async with pool.connection() as conn:
        await conn.execute(
            "INSERT INTO hosting_http01_answers VALUES ('stale', 'stale.thumbprint', now() - interval '1 second')"
        )
    assert (await _get(b, "stale"))[0] == 404
    await asyncio.to_thread(a.put, "tok-3", "tok-3.thumbprint")
    async with pool.connection() as conn:
        rows = await (await conn.execute("SELECT token FROM hosting_http01_answers")).fetchall()
    assert rows == [("tok-3",)]


async def test_an_answer_the_database_cannot_take_fails_the_challenge(
    replicas: list[Http01Responder], pool: AsyncConnectionPool[Any]
) -> None:
    a, _b = replicas
    await pool.close()  # this replica's database is gone
    with pytest.raises(AcmeFailure) as failed:
        await asyncio.to_thread(Solvers(a).present, Validation.HTTP_01, "a.example.com", "tok-4", "tok-4.t")
    assert failed.value.kind == FailureKind.CHALLENGE_FAILED and "could not be shared" in failed.value.detail
    assert await _get(a, "tok-4") == (503, "challenge answers are unavailable")  # neither put nor a 404
