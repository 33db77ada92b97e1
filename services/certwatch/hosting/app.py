"""Bootstrap of the hosting-orchestrator service."""

from __future__ import annotations

from certwatch.hosting.observed_expiry import OBSERVED_EXPIRY
from certwatch.platform.service import Parts, Runtime


async def build(rt: Runtime) -> Parts:
    return Parts(projections=[OBSERVED_EXPIRY])
