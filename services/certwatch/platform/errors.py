"""The project's own exceptions. Pure: importing them loads no driver (the domain raises them);
driver errors are translated into these in one place, `eventlog.translate`."""

from __future__ import annotations


class CertwatchError(Exception):
    """Base of every error certwatch raises on purpose."""


class ConcurrencyConflict(CertwatchError):
    """An append lost the race: the stream moved past the expected version."""

    def __init__(self, stream_id: str, expected: int | None, actual: int | None, message: str):
        super().__init__(message)
        self.stream_id = stream_id
        self.expected = expected
        self.actual = actual


class DuplicateEventId(CertwatchError):
    """Some event ids of an append are already recorded in another append."""


class AppendOnlyViolation(CertwatchError):
    """Something tried to edit or delete a recorded event."""


class TransientStoreError(CertwatchError):
    """The database was briefly unreachable; the operation may be retried."""


class InvalidArgument(CertwatchError):
    """Bad input: one or more (field, rule) violations, reported as google.rpc.BadRequest."""

    def __init__(self, violations: list[tuple[str, str]]):
        super().__init__("; ".join(f"{f}: {d}" for f, d in violations))
        self.violations = violations


class NotFound(CertwatchError):
    """No such thing in the caller's account (also what another account's ids look like)."""


class AlreadyExists(CertwatchError):
    """A unique thing already exists."""


class FailedPrecondition(CertwatchError):
    """The system is not in a state where the request can be done (e.g. no quota left)."""
