"""AccessKey pairs for the VOD API: created per account, secrets sealed at rest.

An HMAC can only be checked with the secret itself, so unlike certwatch's own API keys
(stored as a hash) the secret is sealed with the account-independent Vault under its own
subject; `revoke` marks the key and shreds that subject, so the secret is gone for good.
"""

from __future__ import annotations

import secrets
import string
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from psycopg_pool import AsyncConnectionPool

from certwatch.platform.shredding import Vault
from certwatch.vod import change_feed, signing

_ALPHABET = string.ascii_letters + string.digits


@dataclass(frozen=True, slots=True)
class AccessKey:
    access_key_id: str
    access_key_secret: str


@dataclass(frozen=True, slots=True)
class KeyInfo:
    access_key_id: str
    created_at: datetime
    revoked_at: datetime | None


@dataclass(frozen=True, slots=True)
class KeyRecord:
    account_id: uuid.UUID
    secret: signing.Secret | None  # None once revoked


def _subject(access_key_id: str) -> str:
    return f"vod-access-key:{access_key_id}"


def _random(n: int) -> str:
    return "".join(secrets.choice(_ALPHABET) for _ in range(n))


async def create(pool: AsyncConnectionPool[Any], vault: Vault, account_id: uuid.UUID) -> AccessKey:
    """A new pair for the account; the secret is returned here and never again."""
    key = AccessKey("CW" + _random(22), _random(30))
    async with pool.connection() as conn, conn.transaction():
        sealed = await vault.seal(conn, _subject(key.access_key_id), key.access_key_secret)
        await conn.execute(
            "INSERT INTO vod_access_keys (access_key_id, account_id, sealed_secret) VALUES (%s, %s, %s)",
            (key.access_key_id, account_id, sealed),
        )
    return key


async def revoke(pool: AsyncConnectionPool[Any], account_id: uuid.UUID, access_key_id: str) -> KeyInfo | None:
    """Revoke one of the account's keys; None when it has no such live key. Returns once
    every replica's cache confirmed it dropped the key (`change_feed.confirmed`)."""
    async with (
        pool.connection() as conn,
        change_feed.confirmed(conn, topic(access_key_id)) as change,
        conn.transaction(),  # committed before `confirmed` waits
    ):
        cur = await conn.execute(
            "UPDATE vod_access_keys SET revoked_at = now()"
            " WHERE access_key_id = %s AND account_id = %s AND revoked_at IS NULL"
            " RETURNING access_key_id, created_at, revoked_at",
            (access_key_id, account_id),
        )
        row = await cur.fetchone()
        change.made = row is not None
        if row is None:
            return None
        await Vault.shred(conn, _subject(access_key_id))
    return KeyInfo(*row)


async def list_keys(pool: AsyncConnectionPool[Any], account_id: uuid.UUID) -> list[KeyInfo]:
    """The account's keys, live and revoked, oldest first (no secrets)."""
    async with pool.connection() as conn:
        cur = await conn.execute(
            "SELECT access_key_id, created_at, revoked_at FROM vod_access_keys"
            " WHERE account_id = %s ORDER BY created_at, access_key_id",
            (account_id,),
        )
        return [KeyInfo(*row) for row in await cur.fetchall()]


def topic(access_key_id: str) -> str:
    """The change-feed topic of a key (migration 006 notifies it on any change of the row)."""
    return f"key:{access_key_id}"


class Keys:
    """Looks keys up for every request, from a cache every replica drops a key from as soon
    as its row changes (`change_feed`: revoked is refused at once); while the feed is down,
    the row is read each time. An opened secret is also kept by its sealed form (opening
    costs a second query and AES; a key's sealed secret never changes)."""

    def __init__(self, pool: AsyncConnectionPool[Any], vault: Vault, feed: change_feed.ChangeFeed, *,
                 cached: int = 4096) -> None:  # fmt: skip
        self._pool, self._vault, self._max, self._feed = pool, vault, cached, feed
        self._opened: dict[tuple[str, str], signing.Secret] = {}
        self._records: change_feed.Cache[KeyRecord | None] = change_feed.Cache(feed, max_topics=cached)

    async def lookup(self, access_key_id: str) -> KeyRecord | None:
        """The key's account and secret (None for a revoked key); None for an unknown key."""
        found, record = self._records.get(topic(access_key_id), None)
        if found:
            return record
        epoch = self._feed.epoch
        record = await self._read(access_key_id)
        self._records.put(topic(access_key_id), None, record, epoch)
        return record

    async def _read(self, access_key_id: str) -> KeyRecord | None:
        async with self._pool.connection() as conn:
            cur = await conn.execute(
                "SELECT account_id, sealed_secret, revoked_at FROM vod_access_keys WHERE access_key_id = %s",
                (access_key_id,),
            )
            row = await cur.fetchone()
            if row is None:
                return None
            if row[2] is not None:
                self._opened.pop((access_key_id, row[1]), None)
                return KeyRecord(row[0], None)
            secret = self._opened.get((access_key_id, row[1]))
            if secret is None:
                secret = signing.Secret(str(await self._vault.open(conn, _subject(access_key_id), row[1])))
                if len(self._opened) >= self._max:
                    self._opened.clear()
                self._opened[(access_key_id, row[1])] = secret
        return KeyRecord(row[0], secret)
