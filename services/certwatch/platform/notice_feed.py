"""Caches that every process drops an entry from as soon as PostgreSQL says it changed.

A `NoticeFeed` holds one LISTEN connection: each notice goes to `on_notice`, then the feed
confirms it (NOTIFY on `confirm_channel`, which doubles as its liveness check), so a change
can wait until every listening process applied it (`confirmations`). `on_live` hears when
the feed goes up or down: a cache serves entries only while it is up (notices may have been
missed while it was down).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import Any

import psycopg

log = logging.getLogger(__name__)

PING_S = 1.0  # a feed that cannot answer a query within this is taken as down
RETRY_MAX_S = 5.0


class NoticeFeed:
    def __init__(
        self, url: str | None, *, channel: str, confirm_channel: str, application_name: str,
        on_notice: Callable[[str], None], on_live: Callable[[bool], None],
    ) -> None:  # fmt: skip
        self._url, self._channel, self._confirm = url, channel, confirm_channel
        self.application_name = application_name
        self._on_notice, self._on_live = on_notice, on_live
        self._stopping = asyncio.Event()

    async def run(self) -> None:
        """Listen until `stop`, reconnecting with backoff (no URL: return at once)."""
        delay = 0.2
        while self._url is not None and not self._stopping.is_set():
            try:
                async with await psycopg.AsyncConnection.connect(
                    self._url, autocommit=True, connect_timeout=2, application_name=self.application_name
                ) as conn:
                    await conn.execute(f"LISTEN {self._channel}")
                    self._on_live(True)
                    delay = 0.2
                    await self._follow(conn)
            except (psycopg.Error, OSError, TimeoutError) as exc:
                log.debug("%s: %s", self.application_name, exc)
            finally:
                self._on_live(False)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), delay)
            delay = min(delay * 2, RETRY_MAX_S)

    async def _follow(self, conn: psycopg.AsyncConnection[Any]) -> None:
        while not self._stopping.is_set():
            payloads = [n.payload async for n in conn.notifies(timeout=PING_S, stop_after=1)]
            for payload in payloads:
                self._on_notice(payload)
            async with asyncio.timeout(PING_S):  # the confirmation is also the liveness check
                await conn.execute(
                    "SELECT pg_notify(%s, p) FROM unnest(%s::text[]) AS p", (self._confirm, payloads)
                )

    def stop(self) -> None:
        self._stopping.set()


async def listening(conn: psycopg.AsyncConnection[Any], application_name: str) -> int:
    """How many feeds named `application_name` are connected to this database."""
    cur = await conn.execute(
        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND application_name = %s",
        (application_name,),
    )
    return int((await cur.fetchone() or (0,))[0])


async def confirmations(
    conn: psycopg.AsyncConnection[Any], payload: str, expected: int, timeout_s: float
) -> int:
    """How many confirmations carrying `payload` arrived on the channels `conn` LISTENs to,
    stopping at `expected` or after `timeout_s`."""
    seen = 0
    if expected:
        async for note in conn.notifies(timeout=timeout_s):
            seen += note.payload == payload
            if seen >= expected:
                break
    return seen
