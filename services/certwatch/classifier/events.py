"""Events the classifier records."""

from __future__ import annotations

DOMAIN_CLASSIFIED = "DomainClassified"


def stream_id(domain_id: str) -> str:
    return f"status-{domain_id}"
