"""Does a certificate cover the host name the user monitors?

Implements the browser rules (RFC 6125 as the CA/Browser Forum applies it) rather than
OpenSSL's more lenient ones, because browsers are what site visitors use: a wildcard covers
exactly one whole left-most label, the common name is ignored, and an IP address literal is
matched only against IP address SANs.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from functools import lru_cache


@lru_cache(maxsize=65_536)  # pure; called several times per probe
def normalise_host(host: str) -> str:
    """Lower-case A-label form without brackets or trailing dot (the form SANs use)."""
    host = host.strip().strip("[]").rstrip(".").lower()
    if host.isascii():
        return host
    try:
        return host.encode("idna").decode("ascii")
    except UnicodeError:
        return host


@lru_cache(maxsize=65_536)  # pure; the result is immutable
def parse_ip(host: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """The host as an IP address when it is an address literal, else None."""
    literal = host.strip().strip("[]")
    if ":" not in literal and not literal[-1:].isdigit():
        return None  # neither IPv6 nor IPv4 (ends in a digit): spare the raise-and-catch
    try:
        return ipaddress.ip_address(literal)
    except ValueError:
        return None


def _dns_name_matches(host: str, pattern: str) -> bool:
    pattern = pattern.rstrip(".").lower()
    if not pattern.startswith("*."):
        return host == pattern
    base = pattern[2:]
    if "*" in base or base.count(".") < 1:  # "*.com" and nested wildcards never match
        return False
    first, _, rest = host.partition(".")
    return bool(first) and rest == base


def hostname_matches(host: str, dns_names: Iterable[str], ip_addresses: Iterable[str]) -> bool:
    """True when ``host`` is covered by one of the certificate's SANs."""
    ip = parse_ip(host)
    if ip is not None:
        return any(ip == parse_ip(candidate) for candidate in ip_addresses)
    name = normalise_host(host)
    return any(_dns_name_matches(name, pattern) for pattern in dns_names)
