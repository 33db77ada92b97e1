"""ProbeOptions from the process settings, and curl's ``--resolve`` syntax."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Iterator

from certwatch.platform.config import ConfigError, Settings
from certwatch.platform.dns import parse_nameserver
from certwatch.prober.options import ProbeOptions
from certwatch.rules import targets

RESOLVE_FORM = "HOST:PORT:ADDRESS[,ADDRESS...] (IPv6 addresses in brackets)"


def _unbracketed_colons(text: str) -> int:
    depth, count = 0, 0
    for ch in text:
        depth += ch == "["
        depth -= ch == "]"
        count += ch == ":" and depth == 0
    return count


def _is_address(text: str) -> bool:
    try:
        ipaddress.ip_address(text.strip("[]"))
    except ValueError:
        return False
    return True


def _split_entries(text: str) -> Iterator[str]:
    """One ``--resolve`` value or ``CERTWATCH_RESOLVE`` token → its entries.

    A comma part that is not an address and has two unbracketed colons (``HOST:PORT:...``)
    starts a new entry, so the older comma-separated list of single-address entries
    (``a:443:1.2.3.4,b:443:1.2.3.5``) still reads as two entries.
    """
    current: list[str] = []
    for part in (p.strip() for p in text.split(",")):
        if not part:
            continue  # "a:443:1.2.3.4, b:443:1.2.3.5" splits on the space after a comma
        if current and _unbracketed_colons(part) >= 2 and not _is_address(part):
            yield ",".join(current)
            current = []
        current.append(part)
    if current:
        yield ",".join(current)


def _address(text: str, entry: str) -> str:
    bracketed = text.startswith("[") and text.endswith("]")
    try:
        ip = ipaddress.ip_address(text[1:-1] if bracketed else text)
    except ValueError:
        raise ConfigError(
            f"resolve entry {entry!r}: {text!r} is not an IP address; expected {RESOLVE_FORM}"
        ) from None
    if bracketed and ip.version == 4:
        raise ConfigError(
            f"resolve entry {entry!r}: only IPv6 addresses go in brackets; expected {RESOLVE_FORM}"
        )
    return str(ip)


def _host(text: str, entry: str) -> str:
    """The name as a monitored domain's (`rules.targets`): an override for a name no domain
    can have would never apply."""
    try:
        return targets.normalize_hostname(text, field="resolve")
    except targets.ValidationError as exc:
        raise ConfigError(
            f"resolve entry {entry!r}: HOST must be a host name ({exc.message}); expected {RESOLVE_FORM}"
        ) from None


def _port(text: str, entry: str) -> int:
    try:
        if not text.strip():  # not the default port: curl's entries always name one
            raise targets.ValidationError("resolve", "port_syntax", "no port")
        return targets.validate_port(text, field="resolve")
    except targets.ValidationError:
        raise ConfigError(
            f"resolve entry {entry!r}: PORT must be a number from 1 to 65535; expected {RESOLVE_FORM}"
        ) from None


def parse_resolve_entry(entry: str) -> tuple[tuple[str, int], list[str]]:
    """``HOST:PORT:ADDRESS[,ADDRESS...]`` → ``((host, port), [address, ...])``, as curl reads it;
    HOST and PORT follow the rules of a monitored domain's (`rules.targets`)."""
    host, sep, rest = entry.partition(":")
    port, sep2, addresses = rest.partition(":")
    if not (sep and sep2 and host and addresses):
        raise ConfigError(f"resolve entry {entry!r}: expected {RESOLVE_FORM}")
    if host.startswith("["):
        raise ConfigError(f"resolve entry {entry!r}: HOST must be a host name; expected {RESOLVE_FORM}")
    parsed = [_address(a.strip(), entry) for a in addresses.split(",")]
    return ((_host(host, entry), _port(port, entry)), parsed)


def parse_resolve(entries: Iterable[str]) -> dict[tuple[str, int], list[str]]:
    """curl-style entries (each may hold several, see `_split_entries`) → the probe's overrides."""
    overrides: dict[tuple[str, int], list[str]] = {}
    for value in entries:
        for entry in _split_entries(value):
            key, addresses = parse_resolve_entry(entry)
            known = overrides.setdefault(key, [])
            known.extend(a for a in addresses if a not in known)
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
