"""Keep the log compact: a probe records a chain in full only when the domain's previous
recorded probe did not already report it; otherwise only its fingerprints (`chain_ref`).

Readers get the full chain back from the classifier's certificate store (`chain_store`):
the full report always precedes its references in the log's global order, because the
reference is only written by a later round, after the full report committed.
"""

from __future__ import annotations

import copy
from typing import Any

SCHEMA_VERSION = 2  # ProbeCompleted v2: an endpoint may carry `chain_ref` instead of `chain`


def chain_key(chain: list[dict[str, Any]]) -> str:
    return ",".join(cert["sha256"] for cert in chain)


def compact(result: dict[str, Any], reported: frozenset[str]) -> tuple[dict[str, Any], frozenset[str]]:
    """The result with already-reported chains replaced by references, and the chains this
    probe reports (what the next round may reference)."""
    out = copy.copy(result)
    endpoints = []
    seen: set[str] = set()
    for endpoint in result.get("endpoints", []):
        chain = endpoint.get("chain") or []
        if not chain:
            endpoints.append(endpoint)
            continue
        key = chain_key(chain)
        seen.add(key)
        if key in reported:
            endpoint = {**endpoint, "chain": [], "chain_ref": [cert["sha256"] for cert in chain]}
        endpoints.append(endpoint)
    out["endpoints"] = endpoints
    return out, frozenset(seen)
