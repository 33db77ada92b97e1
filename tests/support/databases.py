"""Fresh databases cloned from the migrated template the test session made."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterator

import psycopg

from certwatch.platform import localstack

TEMPLATE = "certwatch_template"


@contextlib.contextmanager
def fresh_database(server: localstack.Postgres, prefix: str = "t") -> Iterator[str]:
    """A new, migrated database (its URL), dropped afterwards."""
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(server.url, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name} TEMPLATE {TEMPLATE}")
    try:
        yield server.url.rsplit("/", 1)[0] + f"/{name}"
    finally:
        with psycopg.connect(server.url, autocommit=True) as conn:
            conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
