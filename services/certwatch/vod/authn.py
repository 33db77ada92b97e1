"""Who sent a VOD API request: signature, key, clock skew (`authenticate`), then nonce replay
and rate (`admit`), in that order.

The order matters: nothing is remembered (nonce) or counted (rate) for a request whose
signature does not verify, so an unauthenticated caller can neither burn another key's
nonces nor its rate.

Nonces live in PostgreSQL (`vod_signature_nonces`), so every replica refuses a replay. Each
is remembered by one statement whose transaction commits asynchronously
(`synchronous_commit=off` for it alone): a signed request no longer waits for a WAL flush,
and what a PostgreSQL crash (not a certwatch one) can lose is the nonces of its last
moments (at most 3 x wal_writer_delay, 0.6 s by default), whose requests could then be
replayed once within their 15-minute window. The rate limit is per process (a token bucket
per AccessKey), i.e. per replica.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from psycopg_pool import AsyncConnectionPool

from certwatch.platform.shredding import Vault
from certwatch.vod import access_keys, signing
from certwatch.vod.errors import ApiError

_PURGE_EVERY_S = 60.0
_MAX_BUCKETS = 10_000


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
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:  # fmt: skip
        self._pool, self._rate, self._clock = pool, rate, clock
        self._keys = access_keys.Keys(pool, vault)
        self._purged_at = 0.0

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
        await self._remember_nonce(caller.claim)
        wait_ms = self._rate.take(caller.claim.access_key_id)
        if wait_ms is not None:
            raise ApiError("Throttling", "Request was denied due to request throttling.", retry_after_ms=wait_ms)  # fmt: skip

    async def _remember_nonce(self, claim: signing.Claim) -> None:
        async with self._pool.connection() as conn:
            # One statement, committed without waiting for the WAL flush (see the module doc).
            cur = await conn.execute(
                "WITH seen AS (INSERT INTO vod_signature_nonces (access_key_id, nonce) VALUES (%s, %s)"
                " ON CONFLICT DO NOTHING RETURNING 1)"
                " SELECT set_config('synchronous_commit', 'off', true), (SELECT count(*) FROM seen)",
                (claim.access_key_id, claim.nonce),
            )
            row = await cur.fetchone()
            if row is None or row[1] == 0:
                raise ApiError("SignatureNonceUsed", "Specified signature nonce was used already.")
            if time.monotonic() - self._purged_at > _PURGE_EVERY_S:
                self._purged_at = time.monotonic()
                await conn.execute(
                    "DELETE FROM vod_signature_nonces WHERE seen_at < now() - %s",
                    (2 * signing.MAX_SKEW,),
                )
