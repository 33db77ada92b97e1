"""ProbeOptions from the process settings."""

from __future__ import annotations

from certwatch.platform.config import ConfigError, Settings
from certwatch.prober.dns import parse_nameserver
from certwatch.prober.options import ProbeOptions


def parse_resolve(entries: tuple[str, ...] | list[str]) -> dict[tuple[str, int], list[str]]:
    """curl-style `HOST:PORT:ADDRESS[,ADDRESS]` entries (IPv6 addresses may be in brackets)."""
    overrides: dict[tuple[str, int], list[str]] = {}
    for entry in entries:
        host, sep, rest = entry.partition(":")
        port, sep2, addresses = rest.partition(":")
        if not (sep and sep2 and host and port.isdigit() and addresses):
            raise ConfigError(f"resolve entry {entry!r}: expected HOST:PORT:ADDRESS")
        for address in addresses.split(","):
            overrides.setdefault((host.lower().rstrip("."), int(port)), []).append(address.strip("[]"))
    return overrides


def probe_options(settings: Settings) -> ProbeOptions:
    try:
        nameservers = tuple(parse_nameserver(n) for n in settings.dns_servers)
    except ValueError as exc:
        raise ConfigError(f"CERTWATCH_DNS_SERVERS: {exc}") from exc
    return ProbeOptions(
        connect_timeout=settings.probe_connect_timeout_s,
        handshake_timeout=settings.probe_handshake_timeout_s,
        overall=settings.probe_connect_timeout_s + settings.probe_handshake_timeout_s + 5.0,
        resolve=parse_resolve(settings.resolve_overrides),
        ca_file=settings.ca_file,
        nameservers=nameservers,
        allow_networks=settings.allow_networks,
    )
