"""The notifier's workers: a failing round is reported in health and retried, waking skips the wait."""

from __future__ import annotations

import asyncio

from certwatch.notifier.ticker import Ticker


class _Flaky(Ticker):
    def __init__(self) -> None:
        super().__init__(tick_s=3600)  # only wake() makes it go round again within the test
        self.rounds = 0
        self.seen_failing: list[bool] = []

    async def round(self) -> int:
        self.rounds += 1
        self.seen_failing.append(self.failing)
        if self.rounds == 1:
            raise ConnectionError("database away")
        return 1


async def test_a_failing_round_is_health_not_a_crash_and_wake_runs_the_next_at_once() -> None:
    worker = _Flaky()
    task = asyncio.create_task(worker.run())
    for _ in range(200):
        await asyncio.sleep(0.01)
        if worker.rounds == 1:
            break
    assert worker.failing and "ConnectionError: database away" in (worker.progress.last_error or "")
    worker.wake()
    for _ in range(200):
        await asyncio.sleep(0.01)
        if worker.rounds == 2:
            break
    assert worker.seen_failing == [False, True] and not worker.failing
    worker.stop()
    await asyncio.wait_for(task, 5)
