"""Bootstrap of the vod-cert-api service."""

from __future__ import annotations

from certwatch.platform.service import Parts, Runtime
from certwatch.vod.cert_facts import CERT_FACTS


async def build(rt: Runtime) -> Parts:
    return Parts(projections=[CERT_FACTS])
