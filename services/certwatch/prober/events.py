"""Events the prober records."""

from __future__ import annotations

PROBE_COMPLETED = "ProbeCompleted"


def stream_id(domain_id: str) -> str:
    return f"probe-{domain_id}"
