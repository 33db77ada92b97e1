"""API keys: `cw_<key id>_<secret>`, stored as SHA-256 of the secret, checked in constant time.

The secret is 256 random bits, so a fast hash is enough (no password stretching needed).
"""

from __future__ import annotations

import contextvars
import hashlib
import hmac
import secrets
import time
import uuid
from dataclasses import dataclass
from typing import Any

from psycopg_pool import AsyncConnectionPool

from certwatch.platform import telemetry
from certwatch.platform.errors import CertwatchError


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


class KeyVerifier:
    """Resolves a bearer token to a principal; caches hits briefly so a call costs no query."""

    def __init__(self, pool: AsyncConnectionPool[Any], *, ttl_s: float = 2.0) -> None:
        self._pool = pool
        self._ttl = ttl_s
        self._cache: dict[str, tuple[float, bytes, Principal]] = {}

    async def verify(self, authorization: str | None) -> Principal:
        if not authorization or not authorization.lower().startswith("bearer "):
            raise Unauthenticated("missing 'authorization: Bearer <api key>' metadata")
        key_id, secret = parse(authorization[7:].strip())
        digest = _hash(secret)
        hit = self._cache.get(key_id)
        if hit and hit[0] > time.monotonic() and hmac.compare_digest(hit[1], digest):
            return hit[2]
        async with self._pool.connection() as conn:
            cur = await conn.execute(
                "SELECT account_id, secret_hash, role FROM api_keys WHERE key_id = %s AND revoked_at IS NULL",
                (key_id,),
            )
            row = await cur.fetchone()
        if row is None or not hmac.compare_digest(bytes(row[1]), digest):
            raise Unauthenticated("unknown or revoked API key")
        principal = Principal(row[0], key_id, row[2])
        if len(self._cache) > 10_000:
            self._cache.clear()
        self._cache[key_id] = (time.monotonic() + self._ttl, digest, principal)
        return principal
