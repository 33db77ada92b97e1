"""A worker that does a round of work every tick, or sooner when woken: the dispatcher and the
digest scheduler. A round that raises (the database is away) is reported in health and tried
again next tick, never a crashed worker; `stop()` lets the round in progress finish."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from abc import ABC, abstractmethod
from collections.abc import Callable
from datetime import UTC, datetime

from certwatch.platform.health import Progress

log = logging.getLogger(__name__)


class Ticker(ABC):
    def __init__(self, tick_s: float, clock: Callable[[], datetime] | None = None) -> None:
        self._tick_s = tick_s
        self._clock = clock or (lambda: datetime.now(UTC))
        self._wake = asyncio.Event()
        self._stopping = False
        self.progress = Progress()

    @property
    def failing(self) -> bool:
        return self.progress.failing

    def wake(self) -> None:
        self._wake.set()

    def stop(self) -> None:
        self._stopping = True
        self._wake.set()

    @abstractmethod
    async def round(self) -> int:
        """One round of work; how much was done (0: nothing to do)."""

    async def run(self) -> None:
        for _ in range(10**12):  # bounded only by stop()
            if self._stopping:
                return
            try:
                done = await self.round()
            except Exception as exc:
                log.exception("%s round failed", type(self).__name__)
                self.progress.failed(exc)
            else:
                self.progress.advanced() if done else self.progress.ok()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self._tick_s)
            self._wake.clear()
