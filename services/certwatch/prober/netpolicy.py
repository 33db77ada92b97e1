"""Which addresses a probe may connect to.

A monitor that connects wherever a user-supplied name points is a server-side request
forgery tool: it would happily scan the operator's own private network. So only globally
routable addresses are probed, unless the operator explicitly allows a network (tests
allow 127.0.0.0/8; an intranet deployment may allow its own ranges).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from functools import lru_cache

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def refusal_reason(address: str, allow_networks: Sequence[Network]) -> str | None:
    """None when ``address`` may be probed, else why it may not."""
    try:
        return _refusal_reason(address, tuple(allow_networks))
    except TypeError:  # an unhashable network: judge without the cache
        return _refusal_reason.__wrapped__(address, tuple(allow_networks))


@lru_cache(maxsize=65_536)  # pure; a prober asks about the same addresses every round
def _refusal_reason(address: str, allow_networks: tuple[Network, ...]) -> str | None:
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return f"{address!r} is not an IP address"
    if any(ip.version == net.version and ip in net for net in allow_networks):
        return None
    checked = ip
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        checked = ip.ipv4_mapped
    if checked.is_global and not checked.is_multicast:
        return None
    return f"{address} is not a public address (private, reserved, loopback or multicast)"
