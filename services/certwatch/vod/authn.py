"""Who sent a VOD API request: signature, key, clock skew (`authenticate`), then nonce replay
and rate (`admit`), in that order.

The order matters: nothing is remembered (nonce) or counted (rate) for a request whose
signature does not verify, so an unauthenticated caller can neither burn another key's
nonces nor its rate.

Nonces live in PostgreSQL (`vod_signature_nonces`), so every replica refuses a replay. The
nonces of concurrent requests are remembered by one statement (`Nonces`) whose transaction
commits asynchronously
(`synchronous_commit=off` for it alone): a signed request no longer waits for a WAL flush,
and what a PostgreSQL crash (not a certwatch one) can lose is the nonces of its last
moments (at most 3 x wal_writer_delay, 0.6 s by default), whose requests could then be
replayed once within their 15-minute window. The rate limit is per process (a token bucket
per AccessKey), i.e. per replica. Keys come from a cache every replica drops a key from as
soon as it changes (`access_keys.Keys`, `change_feed`).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar

import orjson
from psycopg import AsyncCursor
from psycopg_pool import AsyncConnectionPool

from certwatch.platform.shredding import Vault
from certwatch.vod import access_keys, signing
from certwatch.vod.change_feed import ChangeFeed
from certwatch.vod.errors import ApiError

_PURGE_EVERY_S = 60.0
_MAX_BUCKETS = 10_000

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Caller:
    account_id: uuid.UUID
    claim: signing.Claim


class RateLimit:
    """A token bucket per key: `rate` requests a second, bursts of `burst`."""

    def __init__(self, rate: float, burst: int, *, clock: Callable[[], float] = time.monotonic) -> None:
        self._rate, self._burst, self._clock = rate, burst, clock
        self._buckets: dict[str, tuple[float, float]] = {}  # key -> (tokens, at)

    def take(self, key: str) -> int | None:
        """None when allowed, else the milliseconds until a request would be."""
        now = self._clock()
        tokens, at = self._buckets.get(key, (float(self._burst), now))
        tokens = min(float(self._burst), tokens + (now - at) * self._rate)
        if len(self._buckets) >= _MAX_BUCKETS and key not in self._buckets:
            self._buckets = {k: v for k, v in self._buckets.items() if v[0] < self._burst}
        if tokens < 1.0:
            self._buckets[key] = (tokens, now)
            return max(1, int((1.0 - tokens) / self._rate * 1000) + 1)
        self._buckets[key] = (tokens - 1.0, now)
        return None


class Authenticator:
    def __init__(
        self, pool: AsyncConnectionPool[Any], vault: Vault, rate: RateLimit, *,
        feed: ChangeFeed | None = None, clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:  # fmt: skip
        self._pool, self._rate, self._clock = pool, rate, clock
        self._keys = access_keys.Keys(pool, vault, feed or ChangeFeed(None))
        self._nonces = Nonces(pool)

    async def authenticate(self, request: signing.Request) -> Caller:
        """Who signed the request, and that it is fresh; `admit` then remembers its nonce."""
        claim = signing.parse(request)
        key = await self._keys.lookup(claim.access_key_id)
        if key is None:
            raise ApiError("InvalidAccessKeyId.NotFound", "Specified access key is not found.")
        if key.secret is None:
            raise ApiError("InvalidAccessKeyId.Inactive", "Specified access key is disabled.")
        if not signing.matches(claim, key.secret):
            # The string to sign after "is:", as the cloud words it: the legacy SDK compares it with its own.
            raise ApiError("SignatureDoesNotMatch", f"Specified signature is not matched with our calculation. server string to sign is:{claim.string_to_sign}")  # fmt: skip
        signing.check_fresh(claim, self._clock())
        return Caller(key.account_id, claim)

    async def admit(self, caller: Caller) -> None:
        """Refuse a replayed nonce, then count the request against the key's rate."""
        await self._admitted(caller, self._nonces.submit(caller.claim.access_key_id, caller.claim.nonce))

    async def admit_while(self, caller: Caller, work: Awaitable[T]) -> T:
        """`admit` while `work` (a query) runs: its result is returned only once the request
        is admitted, and a refusal (replay, throttling) comes before `work`'s own error."""
        seen = self._nonces.submit(caller.claim.access_key_id, caller.claim.nonce)
        try:
            result = await work
        except Exception:
            await self._admitted(caller, seen)
            raise
        await self._admitted(caller, seen)
        return result

    async def _admitted(self, caller: Caller, seen: asyncio.Future[bool]) -> None:
        if not await seen:
            raise ApiError("SignatureNonceUsed", "Specified signature nonce was used already.")
        wait_ms = self._rate.take(caller.claim.access_key_id)
        if wait_ms is not None:
            raise ApiError("Throttling", "Request was denied due to request throttling.", retry_after_ms=wait_ms)  # fmt: skip


class Nonces:
    """Remembers signature nonces in PostgreSQL; the nonces of concurrent requests go in one
    statement (one round trip and one commit for all the requests that arrived while the
    previous statement ran), so the cost per request falls as the load rises. The writer
    keeps its task and connection for HOLD_S after a batch: under load no batch pays for
    taking a connection from the pool and giving it back."""

    HOLD_S = 0.5

    def __init__(self, pool: AsyncConnectionPool[Any]) -> None:
        self._pool = pool
        self._pending: list[tuple[str, str, asyncio.Future[bool]]] = []
        self._arrived = asyncio.Event()  # set by a submit while the writer waits for one
        self._writer: asyncio.Task[None] | None = None
        self._purged_at = 0.0

    def submit(self, access_key_id: str, nonce: str) -> asyncio.Future[bool]:
        """Resolves True when the nonce is new for the key (now remembered), False when seen
        before."""
        seen: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self._pending.append((access_key_id, nonce, seen))
        if self._writer is None:
            self._writer = asyncio.create_task(self._write())
        else:
            self._arrived.set()
        return seen

    async def _more(self) -> bool:
        """Whether nonces are waiting, waiting up to HOLD_S for one when none is."""
        if not self._pending:
            self._arrived.clear()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.HOLD_S):
                    await self._arrived.wait()
        return bool(self._pending)

    async def _write(self) -> None:
        batch: list[tuple[str, str, asyncio.Future[bool]]] = []
        try:
            while self._pending:  # one arrived while the connection was given back: take one again
                try:
                    async with self._pool.connection() as conn:
                        cur = conn.cursor()  # one for every batch on this connection
                        while await self._more():
                            batch, self._pending = self._pending, []
                            new = await self._insert(cur, list({(k, n) for k, n, _ in batch}))
                            for key, nonce, seen in batch:
                                if not seen.done():
                                    seen.set_result((key, nonce) in new)
                                new.discard((key, nonce))  # a nonce twice in one batch: only the first is new
                            batch = []
                except Exception as exc:
                    # This batch fails (all waiting ones, without a connection); later ones get a new connection.
                    failed, batch = batch or self._pending, []
                    if failed is self._pending:
                        self._pending = []
                    for *_, seen in failed:
                        if not seen.done():
                            seen.set_exception(exc)
        finally:  # cancelled (shutdown): no waiter is left hanging
            self._writer = None
            for *_, seen in batch + self._pending:
                if not seen.done():
                    seen.cancel()
            self._pending = []

    async def _insert(self, cur: AsyncCursor[Any], pairs: list[tuple[str, str]]) -> set[tuple[str, str]]:
        # One statement, committed without waiting for the WAL flush (see the module doc). The
        # pairs go as one JSON text: psycopg dumps two text[] in Python, a str in C.
        await cur.execute(
            "WITH seen AS (INSERT INTO vod_signature_nonces (access_key_id, nonce)"
            " SELECT p->>0, p->>1 FROM json_array_elements(%s::json) p ON CONFLICT DO NOTHING"
            " RETURNING access_key_id, nonce)"
            " SELECT set_config('synchronous_commit', 'off', true), access_key_id, nonce FROM seen",
            (orjson.dumps(pairs).decode(),),
            prepare=True,
        )
        new = {(row[1], row[2]) for row in await cur.fetchall()}
        if time.monotonic() - self._purged_at > _PURGE_EVERY_S:
            self._purged_at = time.monotonic()
            await cur.execute(
                "DELETE FROM vod_signature_nonces WHERE seen_at < now() - %s", (2 * signing.MAX_SKEW,)
            )
        return new
