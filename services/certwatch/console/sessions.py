"""Signed-in sessions, held in the console's memory, and sign-in rate limits.

Each session carries an API key issued for the user's account at sign-in: the console calls
the services' gRPC APIs with it, so every page is scoped to the account exactly as the API
is. Signing out (or the session expiring) revokes the key. The cookie holds only a random
token; the server keeps its SHA-256. A restart signs everyone out, which is the safe failure.
"""

from __future__ import annotations

import hashlib
import secrets
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

from psycopg_pool import AsyncConnectionPool

from certwatch.console.users import User
from certwatch.platform import auth

TTL_S = 12 * 3600.0
MAX_SESSIONS = 10_000


@dataclass(frozen=True, slots=True)
class Session:
    user: User
    api_key: str
    expires: float

    @property
    def metadata(self) -> tuple[tuple[str, str], ...]:
        return (("authorization", f"Bearer {self.api_key}"),)

    @property
    def key_id(self) -> str:
        return auth.parse(self.api_key)[0]


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class Sessions:
    def __init__(self, pool: AsyncConnectionPool[Any], *, clock: Any = time.monotonic) -> None:
        self._pool = pool
        self._clock = clock
        self._by_digest: OrderedDict[str, Session] = OrderedDict()

    async def start(self, user: User) -> str:
        """A new session for `user`; returns the cookie's token."""
        while len(self._by_digest) >= MAX_SESSIONS:  # the oldest goes first
            _, oldest = self._by_digest.popitem(last=False)
            await self._revoke(oldest)
        key = await auth.issue_key(self._pool, user.account_id, role="user")
        token = secrets.token_urlsafe(32)
        self._by_digest[_digest(token)] = Session(user, key, self._clock() + TTL_S)
        return token

    async def get(self, token: str | None) -> Session | None:
        if not token:
            return None
        session = self._by_digest.get(_digest(token))
        if session is not None and session.expires <= self._clock():
            await self.end(token)
            return None
        return session

    async def end(self, token: str) -> None:
        session = self._by_digest.pop(_digest(token), None)
        if session is not None:
            await self._revoke(session)

    async def _revoke(self, session: Session) -> None:
        principal = auth.Principal(session.user.account_id, session.key_id, "user")
        await auth.revoke_key(self._pool, session.key_id, principal)

    async def close(self) -> None:
        for session in list(self._by_digest.values()):
            await self._revoke(session)
        self._by_digest.clear()


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
