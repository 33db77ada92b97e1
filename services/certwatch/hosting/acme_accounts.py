"""One ACME account per certwatch account and CA directory; its key sealed at rest.

The key is created (EC P-256) the first time an account orders, the account registered at
the CA with the application's contact email, and its URL kept so later sessions skip the
registration. A lost URL costs nothing: registering the same key again answers its URL.
"""

from __future__ import annotations

import asyncio
import weakref
from typing import Any

from psycopg_pool import AsyncConnectionPool

from certwatch.contracts.hosting import KeyType
from certwatch.hosting.acme_client import CaConfig, Session, account_jwk, mapped
from certwatch.hosting.cert_material import new_key_pem
from certwatch.platform.eventlog import Conn
from certwatch.platform.shredding import Vault


def _subject(account_id: str) -> str:
    return f"hosting-acme-account:{account_id}"


async def _row(conn: Conn, account_id: str, directory: str) -> tuple[str, str | None] | None:
    cur = await conn.execute(
        "SELECT sealed_key, account_url FROM hosting_acme_accounts WHERE account_id = %s AND directory = %s",
        (account_id, directory),
    )
    row = await cur.fetchone()
    return None if row is None else (row[0], row[1])


async def session(
    pool: AsyncConnectionPool[Any], vault: Vault, ca: CaConfig, account_id: str, email: str | None
) -> Session:
    async with pool.connection() as conn:
        row = await _row(conn, account_id, ca.directory)
        if row is None:
            key_pem = (await asyncio.to_thread(new_key_pem, KeyType.EC256)).decode()
            async with conn.transaction():
                # Orders of one account run concurrently: one of them creates the key.
                await conn.execute(
                    "SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))", (_subject(account_id),)
                )
                if await _row(conn, account_id, ca.directory) is None:
                    sealed = await vault.seal(conn, _subject(account_id), key_pem)
                    await conn.execute(
                        "INSERT INTO hosting_acme_accounts (account_id, directory, sealed_key) VALUES (%s, %s, %s)",
                        (account_id, ca.directory, sealed),
                    )
            row = await _row(conn, account_id, ca.directory)
            assert row is not None
        key_pem = str(await vault.open(conn, _subject(account_id), row[0]))
    jwk = account_jwk(key_pem.encode())
    known_url: str | None = row[1]
    if known_url is None:
        # Orders of one account start together: one registers the key, the others take its URL.
        # Concurrent registrations of one key race at the CA (pebble answers serverInternal
        # "Error saving account" to all but one).
        async with _registering.setdefault((account_id, ca.directory), asyncio.Lock()):
            async with pool.connection() as conn:
                row = await _row(conn, account_id, ca.directory)
            known_url = row[1] if row else None
            if known_url is None:
                acme: Session = await asyncio.to_thread(mapped, lambda: Session(ca, jwk, None))
                url = await asyncio.to_thread(mapped, lambda: acme.register(email))
                async with pool.connection() as conn:
                    await conn.execute(
                        "UPDATE hosting_acme_accounts SET account_url = %s WHERE account_id = %s AND directory = %s",
                        (url, account_id, ca.directory),
                    )
                return acme
    return await asyncio.to_thread(mapped, lambda: Session(ca, jwk, known_url))


# (account, directory) -> the lock of its registration, while an order of it holds or awaits it.
_registering: weakref.WeakValueDictionary[tuple[str, str], asyncio.Lock] = weakref.WeakValueDictionary()


async def forget(pool: AsyncConnectionPool[Any], account_id: str, directory: str) -> None:
    """Drop the account URL the CA no longer knows (the key stays): the next session registers
    the key again, which gives it an account at that CA once more."""
    async with pool.connection() as conn:
        await conn.execute(
            "UPDATE hosting_acme_accounts SET account_url = NULL WHERE account_id = %s AND directory = %s",
            (account_id, directory),
        )
