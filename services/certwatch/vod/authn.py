"""Who sent a VOD API request: signature, key, clock skew (`authenticate`), then nonce replay
and rate (`admit`), in that order.

The order matters: nothing is remembered (nonce) or counted (rate) for a request whose
signature does not verify, so an unauthenticated caller can neither burn another key's
nonces nor its rate.

Nonces live in PostgreSQL, so every replica refuses a replay (`nonces`). The rate limit is
per process (a token bucket per AccessKey), i.e. per replica. Keys come from a cache every
replica drops a key from as soon as it changes (`access_keys.Keys`, `change_feed`).
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar

from psycopg_pool import AsyncConnectionPool

from certwatch.platform.shredding import Vault
from certwatch.vod import access_keys, signing
from certwatch.vod.change_feed import ChangeFeed
from certwatch.vod.errors import ApiError
from certwatch.vod.nonces import Nonces

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
        if not key.secret.signs(claim):
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
