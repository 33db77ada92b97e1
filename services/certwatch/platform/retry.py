"""Commands that lost an optimistic-concurrency race run again on the new state.

A command handler reads its streams, decides, and appends at the versions it read, all in
one transaction; when another writer got there first (`ConcurrencyConflict`), nothing was
written, so deciding again on what is now there is both safe and what the user meant: an
enable racing a batch add on the same quota stream must not answer ABORTED. Bounded; the
last conflict is raised as is (ABORTED).
"""

from __future__ import annotations

import asyncio
import functools
import random
from collections.abc import Awaitable, Callable
from typing import ParamSpec, TypeVar

from certwatch.platform.errors import ConcurrencyConflict

P = ParamSpec("P")
T = TypeVar("T")

ATTEMPTS = 8


def on_conflict(fn: Callable[P, Awaitable[T]]) -> Callable[P, Awaitable[T]]:
    """Run `fn` again (up to `ATTEMPTS` in all, with a short random pause) on a conflict.
    Only for handlers whose every write is in the transaction that conflicted."""

    @functools.wraps(fn)
    async def run(*args: P.args, **kwargs: P.kwargs) -> T:
        for attempt in range(1, ATTEMPTS + 1):
            try:
                return await fn(*args, **kwargs)
            except ConcurrencyConflict:
                if attempt == ATTEMPTS:
                    raise
                await asyncio.sleep(random.uniform(0, 0.002 * 2**attempt))
        raise AssertionError("unreachable")

    return run
