"""Bootstrap of the vod-cert-api service: its gRPC API and the Alibaba-style HTTP endpoint."""

from __future__ import annotations

from certwatch.platform.config import ConfigError
from certwatch.platform.service import Parts, Runtime
from certwatch.platform.shredding import Vault, parse_master_key
from certwatch.vod import api
from certwatch.vod.http_api import http_worker
from certwatch.vod.observed_hosts import OBSERVED_HOSTS


async def build(rt: Runtime) -> Parts:
    if not rt.settings.master_key:
        raise ConfigError("CERTWATCH_MASTER_KEY is required by vod (AccessKey secrets are sealed with it)")
    vault = Vault(parse_master_key(rt.settings.master_key))
    server = await http_worker(rt, vault)
    return Parts(
        registrations=[api.registration(api.VodApi(rt.pool, vault))],
        projections=[OBSERVED_HOSTS],
        workers=[server],
        on_stop=[server.close],
    )
