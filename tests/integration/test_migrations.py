"""Upgrading a database that already holds data keeps every row and fills new columns."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import psycopg
import pytest

from certwatch.platform import localstack, migrations
from certwatch.services import MIGRATIONS


@pytest.fixture
async def empty_database(postgres_server: localstack.Postgres) -> AsyncIterator[str]:
    name = f"m_{uuid.uuid4().hex[:12]}"
    async with await psycopg.AsyncConnection.connect(postgres_server.url, autocommit=True) as conn:
        await conn.execute(f"CREATE DATABASE {name}")
    yield postgres_server.url.rsplit("/", 1)[0] + f"/{name}"
    async with await psycopg.AsyncConnection.connect(postgres_server.url, autocommit=True) as conn:
        await conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


async def test_history_rows_get_the_transaction_of_their_event(empty_database: str) -> None:
    async with await psycopg.AsyncConnection.connect(empty_database, autocommit=True) as conn:
        await conn.execute(
            "CREATE TABLE schema_migrations (component text NOT NULL, version integer NOT NULL,"
            " name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now(),"
            " PRIMARY KEY (component, version))"
        )
        for m in migrations.discover(MIGRATIONS):  # the schema as it was before history kept log order
            if m.component == "certwatch.classifier" and m.version >= 4:
                continue
            await conn.execute(m.sql.encode())
            await conn.execute(
                "INSERT INTO schema_migrations (component, version, name) VALUES (%s, %s, %s)",
                (m.component, m.version, m.name),
            )
        domain, account = uuid.uuid4(), uuid.uuid4()
        xids = []
        for position in (500, 7):
            cur = await conn.execute(
                "INSERT INTO events (position, event_id, stream_id, stream_version, event_type,"
                " schema_version, data) VALUES (%s, %s, %s, %s, 'DomainClassified', 1, '{}')"
                " RETURNING transaction_id::text",
                (position, uuid.uuid4(), f"status-{domain}", 1 if position == 500 else 2),
            )
            xids.append(int((await cur.fetchone() or ["0"])[0]))
            await conn.execute(
                "INSERT INTO classifier_status_history (position, domain_id, account_id, status,"
                " checked_at, verdict) VALUES (%s, %s, %s, 'SECURE', now(), '{}')",
                (position, domain, account),
            )
            await conn.execute(
                "INSERT INTO classifier_ownership_changes (position, domain_id, account_id,"
                " observed_at, kinds, changes) VALUES (%s, %s, %s, now(), '{}', '[]')",
                (position, domain, account),
            )

        assert "certwatch.classifier/004_history_in_log_order.sql" in await migrations.apply(conn, MIGRATIONS)
        for table in ("classifier_status_history", "classifier_ownership_changes"):
            cur = await conn.execute(
                f"SELECT position, transaction_id::text FROM {table} ORDER BY transaction_id, position"
            )
            assert [(p, int(x)) for p, x in await cur.fetchall()] == [(500, xids[0]), (7, xids[1])]
