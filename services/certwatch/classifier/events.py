"""Events the classifier records, all on the domain's `status-<domain id>` stream.

`DomainClassified` is appended for every probe; `CertificateChainObserved` and
`OwnershipChanged` only when what the domain serves differs from the last observation, so
the log holds each chain once per change rather than once per probe.
"""

from __future__ import annotations

DOMAIN_CLASSIFIED = "DomainClassified"
CERTIFICATE_CHAIN_OBSERVED = "CertificateChainObserved"
OWNERSHIP_CHANGED = "OwnershipChanged"


def stream_id(domain_id: str) -> str:
    return f"status-{domain_id}"
