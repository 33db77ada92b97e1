"""Time-based facts over a presented chain, as pure functions of the chain and "now".

Both the probe (at probe time) and the classifier (at classification time) use these, so
a stored probe result is judged the same way whenever it is re-classified.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime

from certwatch.rules.facts import CertFacts, ChainProblem, PathCert

EXPIRED = "expired"
NOT_YET_VALID = "not_yet_valid"
INTERMEDIATE_EXPIRED = "intermediate_expired"
INTERMEDIATE_NOT_YET_VALID = "intermediate_not_yet_valid"
ROOT_EXPIRED = "root_expired"  # the trust store's root ending the path
ROOT_NOT_YET_VALID = "root_not_yet_valid"

TIME_CODES = frozenset(
    {
        EXPIRED,
        NOT_YET_VALID,
        INTERMEDIATE_EXPIRED,
        INTERMEDIATE_NOT_YET_VALID,
        ROOT_EXPIRED,
        ROOT_NOT_YET_VALID,
    }
)
_CODES = {0: (EXPIRED, NOT_YET_VALID), None: (ROOT_EXPIRED, ROOT_NOT_YET_VALID)}


def time_problems(certs: Iterable[PathCert], now: datetime) -> list[ChainProblem]:
    """One problem per certificate (index 0 the leaf, None the store's root) that is
    outside its validity window."""
    problems: list[ChainProblem] = []
    for index, cert in certs:
        expired, not_yet = _CODES.get(index, (INTERMEDIATE_EXPIRED, INTERMEDIATE_NOT_YET_VALID))
        if now > cert.not_after:
            code = expired
            detail = f"{cert.subject} expired at {cert.not_after.isoformat()}"
        elif now < cert.not_before:
            code = not_yet
            detail = f"{cert.subject} is not valid before {cert.not_before.isoformat()}"
        else:
            continue
        problems.append(ChainProblem(code=code, detail=detail, cert_index=index))
    return problems


def earliest_expiry(chain: Sequence[CertFacts]) -> tuple[datetime, int] | None:
    """The first ``not_after`` over the presented chain and the index of that certificate."""
    if not chain:
        return None
    index = min(range(len(chain)), key=lambda i: chain[i].not_after)
    return (chain[index].not_after, index)
