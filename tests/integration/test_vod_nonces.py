"""A signature nonce is admitted once: within one batch of nonces (the replay sent together
with the original), across batches, and across two replicas (their own pools and
Authenticators) sharing the database."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import pytest
from psycopg_pool import AsyncConnectionPool

from certwatch.platform import auth, db
from certwatch.platform.errors import TransientStoreError
from certwatch.services import MIGRATIONS
from certwatch.vod import access_keys
from certwatch.vod.authn import Authenticator, RateLimit
from certwatch.vod.change_feed import ChangeFeed
from certwatch.vod.errors import ApiError
from certwatch.vod.nonces import Nonces
from tests.integration.test_vod_key_cache import VAULT, _signed


async def _admitted(authn: Authenticator, request: Any) -> str:
    try:
        await authn.admit(await authn.authenticate(request))
    except ApiError as exc:
        return exc.code
    return "OK"


async def test_a_nonce_twice_in_one_batch_is_new_once(pool: AsyncConnectionPool[Any]) -> None:
    nonces = Nonces(pool)
    key, nonce, other = (uuid.uuid4().hex for _ in range(3))
    # Submitted before the writer runs: one batch, one statement.
    batch = [nonces.submit(key, nonce), nonces.submit(key, other), nonces.submit(key, nonce)]
    async with asyncio.timeout(10):
        assert await asyncio.gather(*batch) == [True, True, False]
        assert await nonces.submit(key, nonce) is False  # a later batch
        assert await nonces.submit(uuid.uuid4().hex, nonce) is True  # nonces are per key


async def test_a_replay_sent_with_its_original_is_refused(pool: AsyncConnectionPool[Any]) -> None:
    account_id, _ = await auth.create_account(pool, f"vod-nonce-{uuid.uuid4().hex[:6]}")
    key = await access_keys.create(pool, VAULT, account_id)
    authn = Authenticator(pool, VAULT, RateLimit(1000, 1000), feed=ChangeFeed(None))
    request = _signed(key)
    async with asyncio.timeout(10):
        callers = [await authn.authenticate(request) for _ in range(2)]
        outcomes = await asyncio.gather(*(authn.admit(c) for c in callers), return_exceptions=True)
    assert outcomes[0] is None
    assert isinstance(outcomes[1], ApiError) and outcomes[1].code == "SignatureNonceUsed"


async def test_two_replicas_admit_a_nonce_once(pool: AsyncConnectionPool[Any], database_url: str) -> None:
    account_id, _ = await auth.create_account(pool, f"vod-nonce-{uuid.uuid4().hex[:6]}")
    key = await access_keys.create(pool, VAULT, account_id)
    other = await db.open_pool(database_url, max_size=4, migrate=MIGRATIONS)
    try:
        replicas = [
            Authenticator(p, VAULT, RateLimit(1000, 1000), feed=ChangeFeed(None)) for p in (pool, other)
        ]
        async with asyncio.timeout(20):
            for _ in range(20):  # the same request to both at once: one admits it
                request = _signed(key)
                codes = await asyncio.gather(*(_admitted(r, request) for r in replicas))
                assert sorted(codes) == ["OK", "SignatureNonceUsed"]
            request = _signed(key)  # one after the other, either way round
            assert [await _admitted(r, request) for r in replicas] == ["OK", "SignatureNonceUsed"]
            request = _signed(key)
            assert [await _admitted(r, request) for r in reversed(replicas)] == ["OK", "SignatureNonceUsed"]
    finally:
        await other.close()


async def test_a_connection_taken_again_keeps_its_prepared_statement(
    database_url: str, pool: AsyncConnectionPool[Any]
) -> None:
    """The writer gives its connection back after HOLD_S idle; taking the same one again
    finds the statement it prepared there already."""
    one = await db.open_pool(database_url, max_size=1, migrate=MIGRATIONS)
    try:
        nonces = Nonces(one)
        nonces.HOLD_S = 0.01
        async with asyncio.timeout(10):
            for _ in range(3):
                assert await nonces.submit("k", uuid.uuid4().hex) is True
                while nonces._writers:  # the writer idles out and gives the connection back
                    await asyncio.sleep(0.01)
        async with pool.connection() as conn:
            cur = await conn.execute("SELECT count(*) FROM vod_signature_nonces")
            assert await cur.fetchone() == (3,)
    finally:
        await one.close()


async def test_a_writer_whose_connection_dies_fails_its_batch_as_transient(
    database_url: str, pool: AsyncConnectionPool[Any]
) -> None:
    """The batch in flight when the server ends the writer's session is answered
    ServiceUnavailable (TransientStoreError), not left waiting; the next batch gets a new
    connection."""
    one = await db.open_pool(database_url, max_size=1, migrate=MIGRATIONS)
    try:
        nonces = Nonces(one)
        async with asyncio.timeout(10):
            assert await nonces.submit("k", "first") is True
            while not nonces._idle:  # its first purge done, the writer waits holding its connection
                await asyncio.sleep(0.01)
            async with pool.connection() as conn:  # the writer holds its connection for HOLD_S
                cur = await conn.execute(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = current_database()"
                    " AND pid <> pg_backend_pid() AND query LIKE '%vod_signature_nonces%'"
                )
                assert await cur.fetchall() == [(True,)]
            with pytest.raises(TransientStoreError):
                await nonces.submit("k", "second")
            assert await nonces.submit("k", "third") is True
            assert await nonces.submit("k", "first") is False
    finally:
        await one.close()


async def test_nonces_arriving_together_go_in_two_statements_a_replay_with_its_original(
    pool: AsyncConnectionPool[Any],
) -> None:
    """With no statement in flight, half the waiting nonces go in one statement and the rest
    in a second right behind it (their requests are answered apart); a nonce given twice
    stays in the first, so its first request is the one admitted."""
    nonces = Nonces(pool)
    batches: list[list[str]] = []
    remember = nonces._remember

    async def recorded(statement: Any, batch: list[Any]) -> None:
        batches.append([nonce for _, nonce, _ in batch])
        await remember(statement, batch)

    nonces._remember = recorded  # type: ignore[method-assign]
    a, b, c, d, e = (uuid.uuid4().hex for _ in range(5))
    async with asyncio.timeout(10):
        seen = await asyncio.gather(*(nonces.submit("k", n) for n in (a, b, c, a, d, e)))
    assert seen == [True, True, True, False, True, True]
    assert batches[0] == [a, b, c, a]
    assert [n for batch in batches[1:] for n in batch] == [
        d,
        e,
    ]  # one statement, or two when the first was answered first


async def test_without_a_pool_every_waiting_nonce_fails_and_no_writer_is_left(database_url: str) -> None:
    """Both writers holding connections, then the pool closes (shutdown): every nonce gets
    an answer (through a connection still held, or the error of the closed pool), none
    hangs, and the writers end instead of retrying."""
    one = await db.open_pool(database_url, max_size=2, migrate=MIGRATIONS)
    nonces = Nonces(one)
    async with asyncio.timeout(10):
        assert all(await asyncio.gather(*(nonces.submit("k", uuid.uuid4().hex) for _ in range(8))))
        assert len(nonces._writers) == 2  # the halves went through two writers, both holding on
        await one.close()
        outcomes = await asyncio.gather(
            *(nonces.submit("k", uuid.uuid4().hex) for _ in range(8)), return_exceptions=True
        )
        assert all(o is True or isinstance(o, TransientStoreError) for o in outcomes), outcomes
        while nonces._writers:  # they give their connections back to the closed pool and end
            await asyncio.sleep(0.01)
        with pytest.raises(TransientStoreError):
            await nonces.submit("k", uuid.uuid4().hex)
        while nonces._writers:
            await asyncio.sleep(0.01)
