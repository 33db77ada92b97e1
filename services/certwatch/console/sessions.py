"""Signed-in sessions, in PostgreSQL so that every console replica shares them, and sign-in
rate limits.

Each session carries an API key issued for the user's account at sign-in: the console calls
the services' gRPC APIs with it, so every page is scoped to the account exactly as the API
is. Signing out (or the session expiring) revokes the key, for every replica at once. The
cookie holds only a random token; the table keeps its SHA-256 and the API key sealed under
a key derived from the token (HKDF), so neither a database dump nor a log opens a session.
"""

from __future__ import annotations

import hashlib
import os
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from psycopg_pool import AsyncConnectionPool

from certwatch.console.users import User
from certwatch.platform import auth

TTL_S = 12 * 3600.0
_SWEEP = 100  # expired sessions revoked per sign-in, at most
_NONCE = 12


@dataclass(frozen=True, slots=True)
class Session:
    user: User
    api_key: str

    @property
    def metadata(self) -> tuple[tuple[str, str], ...]:
        return (("authorization", f"Bearer {self.api_key}"),)

    @property
    def key_id(self) -> str:
        return auth.parse(self.api_key)[0]


def token_hash(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


def _cipher(token: str) -> AESGCM:
    key = HKDF(hashes.SHA256(), 32, salt=None, info=b"certwatch console session key").derive(token.encode())
    return AESGCM(key)


def seal(token: str, api_key: str) -> bytes:
    nonce = os.urandom(_NONCE)
    return nonce + _cipher(token).encrypt(nonce, api_key.encode(), None)


def unseal(token: str, sealed: bytes) -> str | None:
    try:
        return _cipher(token).decrypt(sealed[:_NONCE], sealed[_NONCE:], None).decode()
    except (InvalidTag, ValueError):
        return None


_FIND = """
SELECT s.sealed_key, s.expires_at, u.user_id, u.account_id, u.username
FROM console_sessions s JOIN console_users u USING (user_id) WHERE s.token_hash = %s
"""


class Sessions:
    def __init__(
        self, pool: AsyncConnectionPool[Any], *, clock: Callable[[], datetime] = lambda: datetime.now(UTC)
    ) -> None:
        self._pool = pool
        self._clock = clock

    async def start(self, user: User) -> str:
        """A new session for `user`; returns the cookie's token."""
        await self._sweep()
        key = await auth.issue_key(self._pool, user.account_id, role="user")
        token = secrets.token_urlsafe(32)
        expires = self._clock() + timedelta(seconds=TTL_S)
        async with self._pool.connection() as conn:
            await conn.execute(
                "INSERT INTO console_sessions (token_hash, user_id, key_id, sealed_key, expires_at)"
                " VALUES (%s, %s, %s, %s, %s)",
                (token_hash(token), user.user_id, auth.parse(key)[0], seal(token, key), expires),
            )
        return token

    async def get(self, token: str | None) -> Session | None:
        if not token:
            return None
        async with self._pool.connection() as conn:
            cur = await conn.execute(_FIND, (token_hash(token),))
            row = await cur.fetchone()
        if row is None:
            return None
        sealed, expires, user_id, account_id, username = row
        api_key = unseal(token, bytes(sealed))
        if expires <= self._clock() or api_key is None:
            await self.end(token)
            return None
        return Session(User(user_id, account_id, username), api_key)

    async def end(self, token: str) -> None:
        """Sign out: the row goes and its key is revoked (every replica's next request fails)."""
        async with self._pool.connection() as conn:
            cur = await conn.execute(
                "DELETE FROM console_sessions s USING console_users u WHERE s.token_hash = %s"
                " AND u.user_id = s.user_id RETURNING s.key_id, u.account_id",
                (token_hash(token),),
            )
            row = await cur.fetchone()
        if row is not None:
            await self._revoke(row[0], row[1])

    async def _sweep(self) -> None:
        """Revoke the keys of sessions that expired without a sign-out (a bounded batch)."""
        async with self._pool.connection() as conn:
            cur = await conn.execute(
                "DELETE FROM console_sessions s USING console_users u WHERE s.token_hash IN ("
                " SELECT token_hash FROM console_sessions WHERE expires_at <= %s LIMIT %s)"
                " AND u.user_id = s.user_id RETURNING s.key_id, u.account_id",
                (self._clock(), _SWEEP),
            )
            expired = await cur.fetchall()
        for key_id, account_id in expired:
            await self._revoke(key_id, account_id)

    async def _revoke(self, key_id: str, account_id: Any) -> None:
        await auth.revoke_key(self._pool, key_id, auth.Principal(account_id, key_id, "user"))


class SignInLimit:
    """At most `attempts` failed sign-ins per username and per client address in `window_s`
    (a fixed window): guessing is slow, and one attacker cannot lock every user out."""

    def __init__(self, attempts: int = 5, window_s: float = 60.0, *, clock: Any = time.monotonic) -> None:
        self._attempts, self._window, self._clock = attempts, window_s, clock
        self._failures: dict[str, tuple[float, int]] = {}

    def _key_count(self, key: str) -> int:
        started, count = self._failures.get(key, (0.0, 0))
        return 0 if self._clock() - started > self._window else count

    def allowed(self, username: str, client: str) -> bool:
        return all(self._key_count(k) < self._attempts for k in (f"u:{username}", f"c:{client}"))

    def failed(self, username: str, client: str) -> None:
        now = self._clock()
        if len(self._failures) > 100_000:
            self._failures = {k: v for k, v in self._failures.items() if now - v[0] <= self._window}
        for key in (f"u:{username}", f"c:{client}"):
            started, count = self._failures.get(key, (now, 0))
            if now - started > self._window:
                started, count = now, 0
            self._failures[key] = (started, count + 1)

    def retry_after(self) -> int:
        return int(self._window)
