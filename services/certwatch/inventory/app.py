"""Bootstrap of the inventory service."""

from __future__ import annotations

from certwatch.contracts.contacts import SEALED_PREFIX
from certwatch.inventory import api, contact_views, enable_checks, views
from certwatch.inventory.service_end import ServiceEndWorker
from certwatch.platform.service import Parts, Runtime
from certwatch.platform.service_vault import service_vault


async def build(rt: Runtime) -> Parts:
    vault = await service_vault(rt, needs_it_for="it seals contacts' personal data", rewrap=(SEALED_PREFIX,))
    inventory = api.InventoryApi(rt.event_log, vault, allow_custom_webhooks=rt.settings.allow_custom_webhooks,
                                 probe_interval_s=rt.settings.probe_interval_s)  # fmt: skip
    return Parts(
        registrations=[api.registration(inventory)],
        projections=[views.DOMAIN_VIEW, contact_views.CONTACT_VIEW, enable_checks.processor(rt.event_log)],
        workers=[ServiceEndWorker(rt.event_log)],
    )
