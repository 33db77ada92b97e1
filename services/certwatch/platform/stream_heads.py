"""Stream heads a process has seen its own appends reach: they let a COPY append skip the
per-stream version lookup (one index probe and heap fetch per stream, most of the cost of a
batch over many streams).

A head is only ever used as a lower bound of the stream's version in the log, which is
safe: building on a head that is behind (another writer appended since) writes a version
that already exists, the `(stream_id, stream_version)` unique index refuses it, and the
append is redone with lookups. A head ahead of the log would leave a gap, so nothing is
trusted before it is known committed: at once when the log's own transaction committed,
otherwise (an append in a caller's transaction) only after the next lookup round trip
finds the writing transaction committed and its first event visible. A rolled-back
savepoint inside a committed transaction leaves no event behind, so it is never trusted.
Pure bookkeeping, no I/O.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable

# Verdicts on a tentative batch, as the lookup query returns them.
COMMITTED, RUNNING = "c", "r"


class StreamHeads:
    def __init__(self, *, capacity: int = 100_000, pending_limit: int = 64, backoff: int = 64) -> None:
        self._known: dict[str, int] = {}
        # (transaction id, position of its first event) -> the heads that batch wrote
        self._pending: dict[tuple[int, int], dict[str, int]] = {}
        self._capacity = capacity
        self._pending_limit = pending_limit
        self._backoff = backoff
        self._skip = 0

    def __len__(self) -> int:
        return len(self._known)

    def use(self) -> bool:
        """Whether to guess for this batch: not for a while after a guess went stale, so
        writers that keep appending to each other's streams stop paying for failed COPYs."""
        if self._skip:
            self._skip -= 1
            return False
        return True

    def guess(self, stream: str, expected: int | None) -> int | None:
        """The version to build on without asking the log, or None to ask it."""
        head = self._known.get(stream)
        if head is None or (expected is not None and expected != head):
            return None  # a different expectation: the lookup tells a conflict from staleness
        return head

    def guess_many(self, batch: Iterable[tuple[str, int | None]]) -> dict[str, int]:
        """`guess` for (stream, expected) pairs at once: the streams it has a head for."""
        known = self._known
        return {
            s: head for s, expected in batch
            if (head := known.get(s)) is not None and (expected is None or expected == head)
        }  # fmt: skip

    def committed(self, heads: Iterable[tuple[str, int]]) -> None:
        known = self._known
        get = known.get
        for stream, version in heads:
            if get(stream, 0) < version:
                known[stream] = version
        if len(known) > self._capacity:
            for stream in list(itertools.islice(known, len(known) - self._capacity * 3 // 4)):
                del known[stream]

    def tentative(self, transaction_id: int, first_position: int, heads: dict[str, int]) -> None:
        """Heads written in a transaction the log does not commit itself."""
        self._pending[(transaction_id, first_position)] = heads
        while len(self._pending) > self._pending_limit:
            del self._pending[next(iter(self._pending))]

    def pending(self) -> tuple[list[tuple[int, int]], list[str], list[int]]:
        """The tentative batches to settle: keys, transaction ids (text), first positions."""
        keys = list(self._pending)
        return keys, [str(x) for x, _ in keys], [p for _, p in keys]

    def settle(self, keys: list[tuple[int, int]], verdicts: list[str]) -> None:
        for key, verdict in zip(keys, verdicts, strict=True):
            if verdict == RUNNING:
                continue
            heads = self._pending.pop(key, None)
            if heads is not None and verdict == COMMITTED:
                self.committed(heads.items())

    def stale(self, streams: Iterable[str]) -> None:
        """A guess collided: forget these heads and stop guessing for a while."""
        self.forget(streams)
        self._skip = self._backoff

    def forget(self, streams: Iterable[str]) -> None:
        for stream in streams:
            self._known.pop(stream, None)

    def clear(self) -> None:
        """After a lost connection: the server may be another one now (a failover)."""
        self._known.clear()
        self._pending.clear()
