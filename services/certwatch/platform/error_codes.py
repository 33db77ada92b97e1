"""The one table from the project's exceptions to what each transport answers.

gRPC (`grpc_server`) and the coming HTTP APIs map errors through this table, so
an error means the same on both. Codes are the canonical google.rpc names (a `grpc.StatusCode`
member of the same name) and the HTTP status gRPC-JSON transcoding gives them. Order matters:
the first class an exception is an instance of wins.
"""

from __future__ import annotations

from typing import NamedTuple

from certwatch.platform import auth, errors


class Answer(NamedTuple):
    code: str  # google.rpc.Code name, e.g. "NOT_FOUND"
    http: int


TABLE: tuple[tuple[type[Exception], Answer], ...] = (
    (auth.Unauthenticated, Answer("UNAUTHENTICATED", 401)),
    (auth.PermissionDenied, Answer("PERMISSION_DENIED", 403)),
    (errors.InvalidArgument, Answer("INVALID_ARGUMENT", 400)),
    (errors.NotFound, Answer("NOT_FOUND", 404)),
    (errors.AlreadyExists, Answer("ALREADY_EXISTS", 409)),
    (errors.FailedPrecondition, Answer("FAILED_PRECONDITION", 400)),
    (errors.ConcurrencyConflict, Answer("ABORTED", 409)),
    (errors.TransientStoreError, Answer("UNAVAILABLE", 503)),
)
MAPPED: tuple[type[Exception], ...] = tuple(cls for cls, _ in TABLE)


def answer(exc: Exception) -> Answer | None:
    """What a transport answers for `exc`; None for an error the table does not know (a bug:
    INTERNAL, logged)."""
    return next((a for cls, a in TABLE if isinstance(exc, cls)), None)
