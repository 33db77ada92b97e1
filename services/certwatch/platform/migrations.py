"""Versioned schema migrations, applied at start by every process.

The components (packages, in the order they apply) are the caller's: the platform names
none. Each component keeps numbered SQL files (`NNN_name.sql`) in its own `migrations/` folder.
A transaction-scoped advisory lock lets many processes start at once: one applies, the
others wait and then find nothing left to do.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import resources

import psycopg

_FILE = re.compile(r"^(\d{3})_[a-z0-9_]+\.sql$")
_LOCK_KEY = 0x63657274  # "cert"


@dataclass(frozen=True, slots=True)
class Migration:
    component: str
    version: int
    name: str
    sql: str


def discover(components: Sequence[str]) -> list[Migration]:
    found: list[Migration] = []
    for component in components:
        folder = resources.files(component) / "migrations"
        if not folder.is_dir():
            continue
        for entry in sorted(folder.iterdir(), key=lambda e: e.name):
            match = _FILE.match(entry.name)
            if match:
                found.append(Migration(component, int(match[1]), entry.name, entry.read_text()))
    return found


async def apply(conn: psycopg.AsyncConnection[object], components: Sequence[str]) -> list[str]:
    """Apply every pending migration of `components`; return the names applied."""
    applied: list[str] = []
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock(%s)", (_LOCK_KEY,))
        await conn.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations ("
            " component text NOT NULL, version integer NOT NULL, name text NOT NULL,"
            " applied_at timestamptz NOT NULL DEFAULT now(), PRIMARY KEY (component, version))"
        )
        cur = await conn.execute("SELECT component, version FROM schema_migrations")
        done = {(row[0], row[1]) for row in await cur.fetchall()}  # type: ignore[index]
        for migration in discover(components):
            if (migration.component, migration.version) in done:
                continue
            await conn.execute(migration.sql.encode())
            await conn.execute(
                "INSERT INTO schema_migrations (component, version, name) VALUES (%s, %s, %s)",
                (migration.component, migration.version, migration.name),
            )
            applied.append(f"{migration.component}/{migration.name}")
    return applied
