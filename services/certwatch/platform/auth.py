"""API keys: `cw_<key id>_<secret>`, stored as SHA-256 of the secret, checked in constant time.

The secret is 256 random bits, so a fast hash is enough (no password stretching needed).
"""

from __future__ import annotations

import contextvars
import hashlib
import hmac
import logging
import secrets
import time
import uuid
from dataclasses import dataclass
from typing import Any

from psycopg_pool import AsyncConnectionPool

from certwatch.platform import notice_feed, telemetry
from certwatch.platform.errors import CertwatchError

log = logging.getLogger(__name__)

# Migration 007's trigger notifies REVOCATION_CHANNEL with the key id of every key revoked,
# re-keyed or deleted, however that is done; each feed answers on FORGOTTEN_CHANNEL once its
# cache has dropped the key.
REVOCATION_CHANNEL = "certwatch_api_key_revoked"
FORGOTTEN_CHANNEL = "certwatch_api_key_forgotten"
FEED_APPLICATION_NAME = "certwatch-key-revocations"
_ACK_WAIT_S = 1.0  # how long a revocation waits for every feed to confirm


class Unauthenticated(CertwatchError):
    """No key, a malformed key, an unknown key or a revoked one."""


class PermissionDenied(CertwatchError):
    """An authenticated caller asked for something its role may not do."""


@dataclass(frozen=True, slots=True)
class Principal:
    account_id: uuid.UUID
    key_id: str
    role: str

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"


_current: contextvars.ContextVar[Principal | None] = contextvars.ContextVar("principal", default=None)


def current() -> Principal:
    """The caller of the RPC being served; raises when called outside an authenticated call."""
    principal = _current.get()
    if principal is None:
        raise Unauthenticated("no authenticated caller")
    return principal


def event_metadata(principal: Principal) -> dict[str, str]:
    """Metadata for events a caller's command appends: who, and the trace it belongs to."""
    meta = {"account_id": str(principal.account_id), "actor": principal.key_id}
    traceparent = telemetry.current_traceparent()
    if traceparent:
        meta["traceparent"] = traceparent
    return meta


def bind(principal: Principal | None) -> contextvars.Token[Principal | None]:
    return _current.set(principal)


def unbind(token: contextvars.Token[Principal | None]) -> None:
    _current.reset(token)


def _hash(secret: str) -> bytes:
    return hashlib.sha256(secret.encode()).digest()


def parse(token: str) -> tuple[str, str]:
    parts = token.split("_")
    if len(parts) != 3 or parts[0] != "cw" or not parts[1] or len(parts[2]) < 32:
        raise Unauthenticated("malformed API key: expected cw_<id>_<secret>")
    return parts[1], parts[2]


async def create_account(
    pool: AsyncConnectionPool[Any], name: str, *, role: str = "user"
) -> tuple[uuid.UUID, str]:
    """Create an account with one key; return (account id, the key, shown only once)."""
    account_id = uuid.uuid4()
    async with pool.connection() as conn, conn.transaction():
        await conn.execute("INSERT INTO accounts (account_id, name) VALUES (%s, %s)", (account_id, name))
        key = await _issue_key(conn, account_id, role)
    return account_id, key


async def issue_key(pool: AsyncConnectionPool[Any], account_id: uuid.UUID, *, role: str = "user") -> str:
    async with pool.connection() as conn:
        return await _issue_key(conn, account_id, role)


async def _issue_key(conn: Any, account_id: uuid.UUID, role: str) -> str:
    key_id = secrets.token_hex(6)
    secret = secrets.token_urlsafe(32).replace("_", "-")
    await conn.execute(
        "INSERT INTO api_keys (key_id, account_id, secret_hash, role) VALUES (%s, %s, %s, %s)",
        (key_id, account_id, _hash(secret), role),
    )
    return f"cw_{key_id}_{secret}"


async def register_key(
    pool: AsyncConnectionPool[Any], account_id: uuid.UUID, token: str, *, role: str
) -> bool:
    """Store a key generated elsewhere (a deployment's bootstrap Secret) for the account;
    False when that key id exists already (a rerun). Only its hash is kept."""
    key_id, secret = parse(token)
    async with pool.connection() as conn:
        cur = await conn.execute(
            "INSERT INTO api_keys (key_id, account_id, secret_hash, role) VALUES (%s, %s, %s, %s)"
            " ON CONFLICT (key_id) DO NOTHING",
            (key_id, account_id, _hash(secret), role),
        )
        return bool(cur.rowcount == 1)


async def revoke_key(pool: AsyncConnectionPool[Any], key_id: str, principal: Principal) -> bool:
    """Revoke one of the caller's keys (any key, for an admin); False when there is none.

    Returns once every connected revocation feed (one per service) has confirmed that its
    cache dropped the key, or after a second: when the caller hears "revoked", no service
    still accepts the key from its cache.
    """
    async with pool.connection() as conn:
        await conn.execute(f"LISTEN {FORGOTTEN_CHANNEL}")
        try:
            cur = await conn.execute(
                "WITH r AS (UPDATE api_keys SET revoked_at = now() WHERE key_id = %s AND revoked_at IS NULL"
                " AND (account_id = %s OR %s) RETURNING key_id)"
                " SELECT EXISTS (SELECT FROM r), (SELECT count(*) FROM pg_stat_activity"
                " WHERE datname = current_database() AND application_name = %s)",
                (key_id, principal.account_id, principal.is_admin, FEED_APPLICATION_NAME),
            )
            revoked, feeds = await cur.fetchone() or (False, 0)
            if not revoked:
                return False
            confirmed = await notice_feed.confirmations(conn, key_id, feeds, _ACK_WAIT_S)
            if confirmed < feeds:
                log.warning("revoked key %s: %d of %d services confirmed in time", key_id, confirmed, feeds)
        finally:
            await conn.execute(f"UNLISTEN {FORGOTTEN_CHANNEL}")
    return True


class KeyVerifier:
    """Resolves a bearer token to a principal; caches hits briefly so a call costs no query.

    Hits are cached only while the revocation feed is live: a connection that LISTENs on
    `REVOCATION_CHANNEL` and forgets each key announced there, so a revoked key is refused
    by every service at once. While the feed is down (PostgreSQL unreachable, connection
    lost) nothing is cached and every call asks the database; the TTL is a backstop for a
    notice lost while the feed looked live. Run it as a worker (`run`/`stop`).
    """

    def __init__(self, pool: AsyncConnectionPool[Any], *, ttl_s: float = 2.0, url: str | None = None) -> None:
        self._pool = pool
        self._ttl = ttl_s
        self._cache: dict[str, tuple[float, bytes, Principal]] = {}
        self._live = False
        # Bumped by every notice and feed change: a lookup that spans one is not cached.
        self._epoch = 0
        self._feed = notice_feed.NoticeFeed(
            url, channel=REVOCATION_CHANNEL, confirm_channel=FORGOTTEN_CHANNEL,
            application_name=FEED_APPLICATION_NAME, on_notice=self._forget, on_live=self._set_live,
        )  # fmt: skip

    @property
    def live(self) -> bool:
        """Whether the revocation feed is connected (and hits are cached)."""
        return self._live

    async def verify(self, authorization: str | None) -> Principal:
        if not authorization or not authorization.lower().startswith("bearer "):
            raise Unauthenticated("missing 'authorization: Bearer <api key>' metadata")
        key_id, secret = parse(authorization[7:].strip())
        digest = _hash(secret)
        hit = self._cache.get(key_id) if self._live else None
        if hit and hit[0] > time.monotonic() and hmac.compare_digest(hit[1], digest):
            return hit[2]
        epoch = self._epoch
        async with self._pool.connection() as conn:
            cur = await conn.execute(
                "SELECT account_id, secret_hash, role FROM api_keys WHERE key_id = %s AND revoked_at IS NULL",
                (key_id,),
            )
            row = await cur.fetchone()
        if row is None or not hmac.compare_digest(bytes(row[1]), digest):
            raise Unauthenticated("unknown or revoked API key")
        principal = Principal(row[0], key_id, row[2])
        if self._live and epoch == self._epoch:
            if len(self._cache) > 10_000:
                self._cache.clear()
            self._cache[key_id] = (time.monotonic() + self._ttl, digest, principal)
        return principal

    def _forget(self, key_id: str | None) -> None:
        """Drop one key (None: all) and void lookups in flight."""
        self._epoch += 1
        if key_id is None:
            self._cache.clear()
        else:
            self._cache.pop(key_id, None)

    def _set_live(self, live: bool) -> None:
        if live != self._live:
            log.log(logging.INFO if live else logging.WARNING, "API key revocation feed %s",
                    "live: caching verified keys" if live else "down: every call asks the database")  # fmt: skip
        self._live = live
        self._forget(None)  # notices may have been missed

    async def run(self) -> None:
        """Keep the revocation feed connected until `stop`, reconnecting with backoff."""
        await self._feed.run()

    def stop(self) -> None:
        self._feed.stop()
