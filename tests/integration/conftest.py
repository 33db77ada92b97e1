"""Fixtures of the hosting tests: a pebble per module (options from the module's `PEBBLE`
dict, e.g. ``PEBBLE = {"validity_s": 8640000}``; nonces never rejected unless it says so) and
an orchestrator on it with a fresh account."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from psycopg_pool import AsyncConnectionPool

from certwatch.platform.eventlog import EventLog
from tests.support.hosting import Hosting, hosting
from tests.support.pebble import Pebble, pebble


@pytest.fixture(scope="module")
def ca(request: pytest.FixtureRequest) -> Iterator[Pebble]:
    with pebble(**getattr(request.module, "PEBBLE", {"nonce_reject_percent": 0})) as p:
        yield p


@pytest.fixture
async def h(pool: AsyncConnectionPool[Any], event_log: EventLog, ca: Pebble) -> AsyncIterator[Hosting]:
    async for item in hosting(pool, event_log, ca):
        yield item
