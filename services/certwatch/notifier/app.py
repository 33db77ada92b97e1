"""Bootstrap of the notifier service: the incident projection queues alerts, the digest scheduler
queues digests, the dispatcher sends both; the gRPC API sets rules, mutes, acknowledges and tests."""

from __future__ import annotations

from certwatch.notifier import api, incidents, settings
from certwatch.notifier.digests import DigestScheduler
from certwatch.notifier.dispatcher import Dispatcher
from certwatch.platform.service import Parts, Runtime
from certwatch.platform.service_vault import service_vault


async def build(rt: Runtime) -> Parts:
    settings.check(rt.settings)
    # It seals nothing: inventory, which seals the contacts, rewraps their data keys.
    vault = await service_vault(rt, needs_it_for="it opens the contacts' sealed data")
    dispatcher = Dispatcher(rt.event_log, rt.settings, vault)
    notifier = api.NotifierApi(rt.event_log, rt.settings, vault, on_queued=dispatcher.wake)
    return Parts(
        registrations=[api.registration(notifier)],
        projections=[incidents.projection(rt.event_log, rt.settings, vault, after_commit=dispatcher.wake)],
        workers=[dispatcher, DigestScheduler(rt.event_log, rt.settings, vault, on_queued=dispatcher.wake)],
    )
