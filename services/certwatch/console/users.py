"""Console users: one account each, passwords hashed with argon2id.

Verifying a hash costs tens of milliseconds of CPU by design, so it runs in a thread; an
unknown username is checked against a dummy hash, so the two failures take the same time.
"""

from __future__ import annotations

import asyncio
import functools
import re
import secrets
import uuid
from dataclasses import dataclass
from typing import Any

import psycopg
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from psycopg_pool import AsyncConnectionPool

from certwatch.platform.errors import AlreadyExists, InvalidArgument, NotFound

_HASHER = PasswordHasher()  # argon2id, RFC 9106's second recommended parameters
_USERNAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@-]{0,63}")
MIN_PASSWORD = 12


@dataclass(frozen=True, slots=True)
class User:
    user_id: uuid.UUID
    account_id: uuid.UUID
    username: str


@functools.cache
def _dummy() -> str:
    """The hash an unknown username is checked against, made when the console starts
    (`prepare`) rather than at import: it costs ~0.25 s of CPU and 64 MiB, which every CLI
    command and service process importing this module would pay."""
    return _HASHER.hash(secrets.token_urlsafe(16))


async def prepare() -> None:
    """Make the dummy hash before the first sign-in, so that even the first unknown
    username takes as long to refuse as a wrong password."""
    await asyncio.to_thread(_dummy)


def new_password() -> str:
    return secrets.token_urlsafe(18)


def _check(username: str, password: str) -> None:
    problems = []
    if not _USERNAME.fullmatch(username):
        problems.append(("username", "1 to 64 letters, digits or . _ @ -, starting with a letter or digit"))
    if len(password) < MIN_PASSWORD:
        problems.append(("password", f"must be at least {MIN_PASSWORD} characters"))
    if problems:
        raise InvalidArgument(problems)


async def add_user(
    pool: AsyncConnectionPool[Any], account_id: uuid.UUID, username: str, password: str
) -> User:
    _check(username, password)
    hashed = await asyncio.to_thread(_HASHER.hash, password)
    user = User(uuid.uuid4(), account_id, username)
    try:
        async with pool.connection() as conn:
            await conn.execute(
                "INSERT INTO console_users (user_id, account_id, username, password_hash) VALUES (%s, %s, %s, %s)",
                (user.user_id, account_id, username, hashed),
            )
    except psycopg.errors.UniqueViolation:
        raise AlreadyExists(f"a console user named {username!r} already exists") from None
    except psycopg.errors.ForeignKeyViolation:
        raise NotFound(f"no account {account_id}") from None
    return user


async def authenticate(pool: AsyncConnectionPool[Any], username: str, password: str) -> User | None:
    async with pool.connection() as conn:
        cur = await conn.execute(
            "SELECT user_id, account_id, password_hash FROM console_users WHERE username = %s", (username,)
        )
        row = await cur.fetchone()
    stored = row[2] if row else await asyncio.to_thread(_dummy)
    try:
        await asyncio.to_thread(_HASHER.verify, stored, password)
    except (VerificationError, InvalidHashError):
        return None
    return User(row[0], row[1], username) if row else None
