"""Fixtures that start real PostgreSQL and NATS JetStream servers on free loopback ports.

PostgreSQL starts once per test session; each test gets its own fresh database cloned
from a migrated template. NATS starts per test that asks for it, so JetStream state
never leaks between tests.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import tempfile
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import nats
import psycopg
import pytest
from nats.aio.client import Client as NatsClient
from opentelemetry import metrics as otel_metrics
from opentelemetry.sdk.metrics import MeterProvider
from psycopg_pool import AsyncConnectionPool

from certwatch.notifier.channels.base import http_client
from certwatch.platform import db, localstack, migrations
from certwatch.platform.eventlog import EventLog
from certwatch.services import MIGRATIONS
from tests.support.databases import TEMPLATE, fresh_database
from tests.support.metric_reader import READER
from tests.support.robot_servers import RobotState, robot_server
from tests.support.smtp_server import Mailbox


@pytest.fixture(scope="session")
def stack_root() -> Iterator[Path]:
    root = Path(tempfile.mkdtemp(prefix="certwatch-test-"))
    root.chmod(0o755)
    yield root
    shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="session")
def postgres_server(stack_root: Path) -> Iterator[localstack.Postgres]:
    pg = localstack.Postgres(stack_root / "postgres", localstack.free_port(), fast_unsafe=True)
    pg.start()
    with psycopg.connect(pg.url, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {TEMPLATE}")
    template_url = pg.url.rsplit("/", 1)[0] + f"/{TEMPLATE}"

    async def _migrate() -> None:
        async with await psycopg.AsyncConnection.connect(template_url, autocommit=True) as conn:
            await migrations.apply(conn, MIGRATIONS)

    asyncio.run(_migrate())
    try:
        yield pg
    finally:
        pg.stop()


@pytest.fixture
def database_url(postgres_server: localstack.Postgres) -> Iterator[str]:
    """A fresh, migrated database for this test alone."""
    with fresh_database(postgres_server) as url:
        yield url


@pytest.fixture
async def pool(database_url: str) -> AsyncIterator[AsyncConnectionPool[Any]]:
    p = await db.open_pool(database_url, max_size=20, migrate=MIGRATIONS)
    try:
        yield p
    finally:
        await p.close()


@pytest.fixture
def event_log(pool: AsyncConnectionPool[Any]) -> EventLog:
    return EventLog(pool)


@pytest.fixture
def nats_server(stack_root: Path) -> Iterator[localstack.Nats]:
    store = stack_root / f"nats-{uuid.uuid4().hex[:8]}" / "jetstream"
    server = localstack.Nats(store, localstack.free_port())
    server.start()
    try:
        yield server
    finally:
        server.stop()
        with contextlib.suppress(OSError):
            shutil.rmtree(store.parent)


@pytest.fixture
async def nc(nats_server: localstack.Nats) -> AsyncIterator[NatsClient]:
    """A NATS client of the test's own server."""
    client = await nats.connect(nats_server.url)
    try:
        yield client
    finally:
        await client.close()


@pytest.fixture
def robots() -> RobotState:
    """The vendors' fake robots, with no robot yet: a test adds the tokens and secrets it uses."""
    return RobotState()


@pytest.fixture
def robot_url(robots: RobotState) -> Iterator[str]:
    """The base URL of a local server answering like DingTalk, WeCom, Lark, SMS gateways, webhooks."""
    with robot_server(robots) as url:
        yield url


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    """The channels' shared HTTP client."""
    async with http_client() as c:
        yield c


@pytest.fixture
def mailbox() -> Mailbox:
    return Mailbox()


@pytest.fixture(scope="session", autouse=True)
def _metrics() -> None:
    """The SDK's meter provider, as every process has it, with a reader tests can read. Only
    metrics: tracing stays off in-process unless a test sets it up (test_tracing_and_health.py)."""
    otel_metrics.set_meter_provider(MeterProvider(metric_readers=[READER]))
