"""Event positions drawn from the sequence ahead of need, so that an autocommit COPY append
needs no round trip before it starts sending rows. Pure bookkeeping, no I/O."""

from __future__ import annotations


class PositionReserve:
    """Only uniqueness and order within one append matter (global order is (transaction id,
    position)). Refills come from whichever pooled session asked, and each session draws
    from a cached block of its own (migration 006), so a refill may hold lower positions
    than what is left: the reserve is kept sorted, and each append takes a rising run.
    Positions lost with the process are gaps, as the sequence leaves anyway."""

    def __init__(self) -> None:
        self._free: list[int] = []

    def take(self, n: int) -> list[int] | None:
        """The `n` lowest free positions, or None when fewer are left (nothing is taken)."""
        if len(self._free) < n:
            return None
        taken, self._free = self._free[:n], self._free[n:]
        return taken

    def add(self, positions: list[int]) -> None:
        self._free = sorted(self._free + positions)

    def clear(self) -> None:
        """After a lost connection: the server may be another one now (a failover)."""
        self._free = []
