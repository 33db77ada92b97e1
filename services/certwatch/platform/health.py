"""What each long-running part of a service knows about its own health, for `Ops`.

A part is unhealthy when it is failing (the last attempt raised), or when it has work
waiting (lag) and has made no progress for `STUCK_AFTER_S`: busy is fine, stuck is not.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

STUCK_AFTER_S = 60.0
_MAX_ERROR = 300


def _now() -> datetime:
    return datetime.now(UTC)


@dataclass
class Progress:
    """Updated by the part itself: `advanced()` after work done, `failed()` after an error,
    `ok()` after an attempt that raised nothing (possibly with nothing to do)."""

    started_at: datetime = field(default_factory=_now)
    last_progress_at: datetime | None = None
    last_error: str | None = None
    failing_since: datetime | None = None

    @property
    def failing(self) -> bool:
        return self.failing_since is not None

    def advanced(self) -> None:
        self.last_progress_at = _now()
        self.ok()

    def ok(self) -> None:
        self.last_error = None
        self.failing_since = None

    def failed(self, exc: BaseException) -> None:
        text = " ".join(f"{type(exc).__name__}: {exc}".split())
        self.last_error = text[:_MAX_ERROR]
        if self.failing_since is None:
            self.failing_since = _now()


def healthy(progress: Progress | None, lag: int, last_progress_at: datetime | None, now: datetime) -> bool:
    """Not failing, and either caught up or moving (counting from the start of the part)."""
    if progress is not None and progress.failing:
        return False
    if lag <= 0:
        return True
    since = last_progress_at or (progress.started_at if progress is not None else None)
    return since is not None and now - since <= timedelta(seconds=STUCK_AFTER_S)
