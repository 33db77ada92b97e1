"""Bootstrap of the inventory service."""

from __future__ import annotations

from certwatch.inventory import api, views
from certwatch.platform.service import Parts, Runtime


async def build(rt: Runtime) -> Parts:
    return Parts(registrations=[api.registration(api.InventoryApi(rt.event_log))],
                 projections=[views.DOMAIN_VIEW])  # fmt: skip
