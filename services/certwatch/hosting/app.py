"""Bootstrap of the hosting-orchestrator service: the Hosting API, the orchestrator and its
http-01 responder (when a CA is configured), the hosting views and observed-expiry projections."""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping

from certwatch.hosting import api, views
from certwatch.hosting.acme_client import CaConfig
from certwatch.hosting.challenges import Solvers
from certwatch.hosting.dns_providers import Rfc2136, Tsig
from certwatch.hosting.http01 import Http01Responder
from certwatch.hosting.metrics import ExpirySampler
from certwatch.hosting.observed_expiry import OBSERVED_EXPIRY
from certwatch.hosting.orchestrator import Orchestrator
from certwatch.hosting.settings import AcmeSettings
from certwatch.hosting.use_cases import HostingUseCases
from certwatch.platform.config import ConfigError
from certwatch.platform.service import Parts, Runtime, Worker
from certwatch.platform.service_vault import service_vault

log = logging.getLogger(__name__)
KEY_PREFIX = "hosting-"  # every subject the hosting service seals under


def _dns(acme: AcmeSettings) -> Rfc2136 | None:
    if acme.dns_provider is None or acme.rfc2136_server is None:
        return None
    host, _, port = acme.rfc2136_server.rpartition(":")
    if not port.isdigit():
        raise ConfigError(f"CERTWATCH_ACME_RFC2136_SERVER must be HOST:PORT, got {acme.rfc2136_server!r}")
    return Rfc2136(host.strip("[]"), int(port), Tsig.parse(acme.rfc2136_tsig) if acme.rfc2136_tsig else None)


async def build(rt: Runtime, env: Mapping[str, str] = os.environ) -> Parts:
    acme = AcmeSettings.from_env(env)
    vault = await service_vault(rt, needs_it_for="it seals private keys", rewrap=(KEY_PREFIX,))
    workers: list[Worker] = [ExpirySampler(rt.pool, domains=acme.expiry_gauge_domains)]
    if acme.directory:
        responder = Http01Responder(rt.pool, acme.http01_host, acme.http01_port)
        ca = CaConfig(acme.directory, acme.ca_file, eab_kid=acme.eab_kid, eab_hmac_key=acme.eab_hmac_key)
        orchestrator = Orchestrator(
            rt.event_log, vault, ca, Solvers(responder, _dns(acme)), poll_s=acme.poll_s
        )
        workers += [responder, orchestrator]
    else:
        log.warning(
            "hosting: CERTWATCH_ACME_DIRECTORY is not set: applications are recorded, no order is placed"
        )
    return Parts(
        registrations=[
            api.registration(
                api.HostingApi(HostingUseCases(rt.event_log, vault, ca_file=rt.settings.ca_file))
            )
        ],
        projections=[OBSERVED_EXPIRY, views.projection(rt.event_log)],
        workers=workers,
    )
