"""Bootstrap of the notifier service."""

from __future__ import annotations

from certwatch.notifier.alert_state import ALERT_STATE
from certwatch.platform.service import Parts, Runtime


async def build(rt: Runtime) -> Parts:
    return Parts(projections=[ALERT_STATE])
