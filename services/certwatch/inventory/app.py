"""Bootstrap of the inventory service."""

from __future__ import annotations

from certwatch.inventory import api, contact_views, enable_checks, views
from certwatch.inventory.service_end import ServiceEndWorker
from certwatch.platform.config import ConfigError
from certwatch.platform.service import Parts, Runtime
from certwatch.platform.shredding import Vault, parse_master_key


async def build(rt: Runtime) -> Parts:
    if not rt.settings.master_key:
        raise ConfigError("CERTWATCH_MASTER_KEY is required by inventory (32 bytes, base64;"
                          " `make run` writes one to var/master.key)")  # fmt: skip
    vault = Vault(parse_master_key(rt.settings.master_key))
    inventory = api.InventoryApi(rt.event_log, vault, allow_custom_webhooks=rt.settings.allow_custom_webhooks,
                                 probe_interval_s=rt.settings.probe_interval_s)  # fmt: skip
    return Parts(
        registrations=[api.registration(inventory)],
        projections=[views.DOMAIN_VIEW, contact_views.CONTACT_VIEW, enable_checks.processor(rt.event_log)],
        workers=[ServiceEndWorker(rt.event_log)],
    )
