"""Who sent a VOD API request: signature, key, clock skew, nonce replay and rate, in that order.

The order matters: nothing is remembered (nonce) or counted (rate) for a request whose
signature does not verify, so an unauthenticated caller can neither burn another key's
nonces nor its rate.

Nonces live in PostgreSQL (`vod_signature_nonces`), so every replica refuses a replay; the
rate limit is per process (a token bucket per AccessKey), i.e. per replica.
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
        self._pool, self._vault, self._rate, self._clock = pool, vault, rate, clock
        self._purged_at = 0.0

    async def authenticate(self, request: signing.Request) -> Caller:
        claim = signing.parse(request)
        key = await access_keys.lookup(self._pool, self._vault, claim.access_key_id)
        if key is None:
            raise ApiError("InvalidAccessKeyId.NotFound", "Specified access key is not found.")
        if key.secret is None:
            raise ApiError("InvalidAccessKeyId.Inactive", "Specified access key is disabled.")
        if not signing.matches(claim, key.secret):
            # The string to sign after "is:", as the cloud words it: the legacy SDK compares it with its own.
            raise ApiError("SignatureDoesNotMatch", f"Specified signature is not matched with our calculation. server string to sign is:{claim.string_to_sign}")  # fmt: skip
        signing.check_fresh(claim, self._clock())
        await self._remember_nonce(claim)
        wait_ms = self._rate.take(claim.access_key_id)
        if wait_ms is not None:
            raise ApiError("Throttling", "Request was denied due to request throttling.", retry_after_ms=wait_ms)  # fmt: skip
        return Caller(key.account_id, claim)

    async def _remember_nonce(self, claim: signing.Claim) -> None:
        async with self._pool.connection() as conn:
            cur = await conn.execute(
                "INSERT INTO vod_signature_nonces (access_key_id, nonce) VALUES (%s, %s)"
                " ON CONFLICT DO NOTHING",
                (claim.access_key_id, claim.nonce),
            )
            if cur.rowcount == 0:
                raise ApiError("SignatureNonceUsed", "Specified signature nonce was used already.")
            if time.monotonic() - self._purged_at > _PURGE_EVERY_S:
                self._purged_at = time.monotonic()
                await conn.execute(
                    "DELETE FROM vod_signature_nonces WHERE seen_at < now() - %s",
                    (2 * signing.MAX_SKEW,),
                )
