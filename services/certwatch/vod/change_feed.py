"""Caches of vod's rows that every replica drops at once when a row changes.

Triggers on the cached tables (migration 006) `NOTIFY certwatch_vod_changed` with a topic:
`key:<access key id>` or `account:<account id>` (its domains and certificates). Each replica
holds one LISTEN connection (`ChangeFeed.run`, a worker; `platform.notice_feed`) and answers
every notice it applied on `certwatch_vod_forgotten`, so a revocation can wait until every replica confirmed
(`confirmed`): when `vod keys revoke` returns, no replica accepts the key any more.

Entries are served only while the feed is live; while it is down (PostgreSQL unreachable,
connection lost) every lookup reads the database, and going down or up drops everything
(notices may have been missed). A lookup that a notice overtakes is not kept (`epoch`).
The TTL is a backstop for a notice lost while the feed looked live.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import AsyncIterator, Hashable
from typing import Any, Generic, TypeVar

import psycopg

from certwatch.platform.notice_feed import NoticeFeed, confirmations, listening

log = logging.getLogger(__name__)

CHANGED = "certwatch_vod_changed"
FORGOTTEN = "certwatch_vod_forgotten"
APPLICATION_NAME = "certwatch-vod-changes"
CONFIRM_S = 1.0  # how long a change waits for every replica to confirm

V = TypeVar("V")


class Cache(Generic[V]):
    """Entries grouped by topic: a notice of a topic drops its whole group. At most
    `max_topics` groups of at most as many entries each."""

    def __init__(self, feed: ChangeFeed, *, ttl_s: float = 30.0, max_topics: int = 10_000) -> None:
        self._feed, self._ttl, self._max = feed, ttl_s, max_topics
        self._groups: dict[str, dict[Hashable, tuple[float, V]]] = {}
        feed.caches.append(self)

    def get(self, topic: str, key: Hashable) -> tuple[bool, V | None]:
        """(found, value); never found while the feed is down."""
        hit = self._groups.get(topic, {}).get(key) if self._feed.live else None
        if hit is None or hit[0] < time.monotonic():
            return False, None
        return True, hit[1]

    def put(self, topic: str, key: Hashable, value: V, epoch: int) -> None:
        """Keep `value`, read at `epoch` (`ChangeFeed.epoch` before the read), unless a
        notice came since or the feed is down."""
        if not self._feed.live or epoch != self._feed.epoch:
            return
        if topic not in self._groups and len(self._groups) >= self._max:
            self._groups.clear()
        group = self._groups.setdefault(topic, {})
        if len(group) >= self._max:  # names asked for at random must not grow it without end
            group.clear()
        group[key] = (time.monotonic() + self._ttl, value)

    def forget(self, topic: str | None) -> None:
        if topic is None:
            self._groups.clear()
        else:
            self._groups.pop(topic, None)


class ChangeFeed:
    """The LISTEN connection behind the caches (a worker: `run`/`stop`); `url=None`: no
    feed, nothing is ever cached."""

    def __init__(self, url: str | None) -> None:
        self.caches: list[Cache[Any]] = []
        self.live = False
        self.epoch = 0  # bumped by every notice and every change of `live`
        self._feed = NoticeFeed(
            url, channel=CHANGED, confirm_channel=FORGOTTEN, application_name=APPLICATION_NAME,
            on_notice=self.drop, on_live=self._set_live,
        )  # fmt: skip

    def drop(self, topic: str | None) -> None:
        """Drop a topic (None: all) from every cache and void the lookups in flight; also
        what a replica does for its own change, not to wait for the notice."""
        self.epoch += 1
        for cache in self.caches:
            cache.forget(topic)

    def _set_live(self, live: bool) -> None:
        if live != self.live:
            log.log(
                logging.INFO if live else logging.WARNING, "vod change feed %s", "live" if live else "down"
            )
        self.live = live
        self.drop(None)

    async def run(self) -> None:
        await self._feed.run()

    def stop(self) -> None:
        self._feed.stop()


class Change:
    made = True  # set False by a change that turned out to change nothing (no notice to wait for)


@contextlib.asynccontextmanager
async def confirmed(conn: psycopg.AsyncConnection[Any], topic: str) -> AsyncIterator[Change]:
    """Around a change (its own transaction inside) that notifies `topic`: on leaving, waits
    (up to CONFIRM_S) until every connected feed confirmed it dropped the topic."""
    await conn.execute(f"LISTEN {FORGOTTEN}")
    try:
        change = Change()
        yield change
        feeds = await listening(conn, APPLICATION_NAME) if change.made else 0
        seen = await confirmations(conn, topic, feeds, CONFIRM_S)
        if seen < feeds:
            log.warning("vod change %s: %d of %d replicas confirmed in time", topic, seen, feeds)
    finally:
        await conn.execute(f"UNLISTEN {FORGOTTEN}")
