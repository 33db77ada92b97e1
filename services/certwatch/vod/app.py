"""Bootstrap of the vod-cert-api service: its gRPC API and the Alibaba-style HTTP endpoint."""

from __future__ import annotations

from certwatch.platform import dns
from certwatch.platform.config import ConfigError
from certwatch.platform.service import Parts, Runtime
from certwatch.platform.service_vault import service_vault
from certwatch.vod import api
from certwatch.vod.cert_info import CertInfo
from certwatch.vod.change_feed import ChangeFeed
from certwatch.vod.domain_views import DOMAIN_VIEWS
from certwatch.vod.domains import VodDomains
from certwatch.vod.hosting_views import HOSTING_VIEWS
from certwatch.vod.http_api import http_worker
from certwatch.vod.observed_hosts import OBSERVED_HOSTS

KEY_PREFIX = "vod-"  # every subject vod seals under (AccessKey secrets, uploaded certificates' keys)


async def build(rt: Runtime) -> Parts:
    s = rt.settings
    vault = await service_vault(
        rt, needs_it_for="it seals AccessKey secrets and uploaded keys", rewrap=(KEY_PREFIX,)
    )
    try:
        nameservers = tuple(dns.parse_nameserver(n) for n in s.dns_servers)
    except ValueError as exc:
        raise ConfigError(f"CERTWATCH_DNS_SERVERS: {exc}") from exc
    feed = ChangeFeed(s.database_url)  # keys and domain lookups cached, dropped on change
    domains = VodDomains(rt.event_log, vault, cname_suffix=s.vod_cname_suffix, ca_file=s.ca_file, feed=feed)
    info = CertInfo(
        rt.pool, domains, region=s.vod_region, cname_suffix=s.vod_cname_suffix, nameservers=nameservers
    )
    server = await http_worker(rt, info, domains, vault, feed)
    return Parts(
        registrations=[api.registration(api.VodApi(rt.pool, vault, domains, info))],
        projections=[OBSERVED_HOSTS, DOMAIN_VIEWS, HOSTING_VIEWS],
        workers=[feed, server],
        on_stop=[server.close],
    )
