"""Which cause is the primary one when several are found.

Network failure > no SSL > expired > chain validation failed > mismatch > about to expire
(DESIGN.md): a cause that prevents observing the next one comes first. Enable-time causes
sit before all of them, in the order a connection attempt meets them: resolving, the
network policy, connecting, then speaking TLS.
"""

from __future__ import annotations

from collections.abc import Iterable

from certwatch.rules.causes import Cause

PRECEDENCE: tuple[Cause, ...] = (
    Cause.INVALID_IP,
    Cause.INVALID_DOMAIN,
    Cause.CONNECTION_FAILURE,
    Cause.INVALID_PORT,
    Cause.NETWORK_CONNECTION_FAILURE,
    Cause.NO_SSL_CERTIFICATE,
    Cause.EXPIRED,
    Cause.CHAIN_VALIDATION_FAILED,
    Cause.CERTIFICATE_MISMATCH,
    Cause.ABOUT_TO_EXPIRE,
)

_RANK = {cause: rank for rank, cause in enumerate(PRECEDENCE)}


def rank(cause: Cause) -> int:
    """Smaller is more important."""
    return _RANK[cause]


def ordered(causes: Iterable[Cause]) -> tuple[Cause, ...]:
    """Distinct causes, most important first."""
    return tuple(sorted(set(causes), key=rank))


def primary(causes: Iterable[Cause]) -> Cause | None:
    """The most important cause, or None when there is none."""
    found = ordered(causes)
    return found[0] if found else None
