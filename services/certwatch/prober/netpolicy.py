"""Which addresses a probe may connect to.

A monitor that connects wherever a user-supplied name points is a server-side request
forgery tool: it would happily scan the operator's own private network. So only globally
reachable addresses are probed, unless the operator explicitly allows a network (tests
allow 127.0.0.0/8; an intranet deployment may allow its own ranges).

The judgement is our own data, not ``ipaddress.is_global`` (whose answer changes between
Python releases and calls ``::7f00:1`` or ``2002:7f00:1::1`` global):

1. An address inside an allowed network may be probed.
2. An IPv6 address that embeds IPv4 addresses (IPv4-mapped, IPv4-compatible, SIIT, NAT64,
   6to4, Teredo) is judged by those IPv4 addresses: a packet to it ends at, or is tunnelled
   to, that IPv4 host. So a host refused over IPv4 is refused in every IPv6 spelling, and
   an allowed IPv4 network admits its embedded spellings too (allowing a host allows every
   way of writing it). A carrier prefix that is not globally reachable (NAT64 local-use,
   SIIT) is refused unless the address or its embedded IPv4 is allowed.
3. Otherwise the most specific entry of IANA's special-purpose address registries (RFC 6890
   and its updates) that contains the address decides, by its "Globally Reachable" column.
4. Beyond the registries, multicast and the deprecated site-local prefix are refused, and
   so is IPv6 outside the global unicast space 2000::/3 (the rest of the IPv6 address space
   is reserved by the IETF: no public server lives there).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import lru_cache

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Address = ipaddress.IPv4Address | ipaddress.IPv6Address


@dataclass(frozen=True, slots=True)
class Special:
    """One row of a special-purpose address registry."""

    network: Network
    name: str
    reference: str
    globally_reachable: bool


def _rows(*rows: tuple[str, str, str, bool]) -> tuple[Special, ...]:
    return tuple(Special(ipaddress.ip_network(n), name, ref, g) for n, name, ref, g in rows)


# IANA IPv4 Special-Purpose Address Registry. "N/A" in the Globally Reachable column is
# recorded as False: nothing a monitor should connect to.
IPV4_SPECIAL = _rows(
    ("0.0.0.0/8", '"This network"', "RFC 791", False),
    ("0.0.0.0/32", '"This host on this network"', "RFC 1122", False),
    ("10.0.0.0/8", "Private-Use", "RFC 1918", False),
    ("100.64.0.0/10", "Shared Address Space", "RFC 6598", False),
    ("127.0.0.0/8", "Loopback", "RFC 1122", False),
    ("169.254.0.0/16", "Link Local", "RFC 3927", False),
    ("172.16.0.0/12", "Private-Use", "RFC 1918", False),
    ("192.0.0.0/24", "IETF Protocol Assignments", "RFC 6890", False),
    ("192.0.0.0/29", "IPv4 Service Continuity Prefix", "RFC 7335", False),
    ("192.0.0.8/32", "IPv4 dummy address", "RFC 7600", False),
    ("192.0.0.9/32", "Port Control Protocol Anycast", "RFC 7723", True),
    ("192.0.0.10/32", "Traversal Using Relays around NAT Anycast", "RFC 8155", True),
    ("192.0.0.170/32", "NAT64/DNS64 Discovery", "RFC 8880", False),
    ("192.0.0.171/32", "NAT64/DNS64 Discovery", "RFC 8880", False),
    ("192.0.2.0/24", "Documentation (TEST-NET-1)", "RFC 5737", False),
    ("192.31.196.0/24", "AS112-v4", "RFC 7535", True),
    ("192.52.193.0/24", "AMT", "RFC 7450", True),
    ("192.88.99.0/24", "Deprecated (6to4 Relay Anycast)", "RFC 7526", False),
    ("192.168.0.0/16", "Private-Use", "RFC 1918", False),
    ("192.175.48.0/24", "Direct Delegation AS112 Service", "RFC 7534", True),
    ("198.18.0.0/15", "Benchmarking", "RFC 2544", False),
    ("198.51.100.0/24", "Documentation (TEST-NET-2)", "RFC 5737", False),
    ("203.0.113.0/24", "Documentation (TEST-NET-3)", "RFC 5737", False),
    ("240.0.0.0/4", "Reserved", "RFC 1112", False),
    ("255.255.255.255/32", "Limited Broadcast", "RFC 919", False),
)

# IANA IPv6 Special-Purpose Address Registry. The embedded-IPv4 prefixes (::ffff:0:0/96,
# 64:ff9b::/96, 64:ff9b:1::/48, 2001::/32, 2002::/16) are listed too, but an address in
# them is judged by its embedded IPv4 first (``EMBEDDED_FORMS``).
IPV6_SPECIAL = _rows(
    ("::1/128", "Loopback Address", "RFC 4291", False),
    ("::/128", "Unspecified Address", "RFC 4291", False),
    ("::ffff:0:0/96", "IPv4-mapped Address", "RFC 4291", False),
    ("64:ff9b::/96", "IPv4-IPv6 Translat.", "RFC 6052", True),
    ("64:ff9b:1::/48", "IPv4-IPv6 Translat. (local-use)", "RFC 8215", False),
    ("100::/64", "Discard-Only Address Block", "RFC 6666", False),
    ("100:0:0:1::/64", "Dummy IPv6 Prefix", "RFC 9780", False),
    ("2001::/23", "IETF Protocol Assignments", "RFC 2928", False),
    ("2001::/32", "TEREDO", "RFC 4380", False),
    ("2001:1::1/128", "Port Control Protocol Anycast", "RFC 7723", True),
    ("2001:1::2/128", "Traversal Using Relays around NAT Anycast", "RFC 8155", True),
    ("2001:1::3/128", "DNS-SD Service Registration Protocol Anycast", "RFC 9665", True),
    ("2001:2::/48", "Benchmarking", "RFC 5180", False),
    ("2001:3::/32", "AMT", "RFC 7450", True),
    ("2001:4:112::/48", "AS112-v6", "RFC 7535", True),
    ("2001:10::/28", "Deprecated (previously ORCHID)", "RFC 4843", False),
    # The registry marks ORCHIDv2 and DETs globally reachable, but both are identifiers,
    # "not routable at the IP layer" (RFC 7343 section 2): no server can be probed there.
    ("2001:20::/28", "ORCHIDv2", "RFC 7343", False),
    ("2001:30::/28", "Drone Remote ID Protocol Entity Tags (DETs) Prefix", "RFC 9374", False),
    ("2001:db8::/32", "Documentation", "RFC 3849", False),
    ("2002::/16", "6to4", "RFC 3056", False),
    ("2620:4f:8000::/48", "Direct Delegation AS112 Service", "RFC 7534", True),
    ("3fff::/20", "Documentation", "RFC 9637", False),
    ("5f00::/16", "Segment Routing (SRv6) SIDs", "RFC 9602", False),
    ("fc00::/7", "Unique-Local", "RFC 4193", False),
    ("fe80::/10", "Link-Local Unicast", "RFC 4291", False),
)

# Not in the special-purpose registries but never a server: multicast, and the deprecated
# IPv6 site-local prefix that some networks still route internally.
BEYOND_REGISTRIES = _rows(
    ("224.0.0.0/4", "Multicast", "RFC 5771", False),
    ("ff00::/8", "Multicast", "RFC 4291", False),
    ("fec0::/10", "Deprecated site-local", "RFC 3879", False),
)
_IPV6_GLOBAL_UNICAST = ipaddress.IPv6Network("2000::/3")


def _low32(ip: ipaddress.IPv6Address) -> tuple[ipaddress.IPv4Address, ...]:
    return (ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF),)


def _six_to_four(ip: ipaddress.IPv6Address) -> tuple[ipaddress.IPv4Address, ...]:
    return (ipaddress.IPv4Address((int(ip) >> 80) & 0xFFFFFFFF),)


def _teredo(ip: ipaddress.IPv6Address) -> tuple[ipaddress.IPv4Address, ...]:
    server = ipaddress.IPv4Address((int(ip) >> 64) & 0xFFFFFFFF)
    client = ipaddress.IPv4Address(~int(ip) & 0xFFFFFFFF)  # stored inverted (RFC 4380 4)
    return (server, client)


Extract = Callable[[ipaddress.IPv6Address], tuple[ipaddress.IPv4Address, ...]]


@dataclass(frozen=True, slots=True)
class EmbeddedForm:
    """An IPv6 prefix whose addresses carry IPv4 addresses, and how to read them out."""

    network: ipaddress.IPv6Network
    name: str
    extract: Extract
    carrier_reachable: bool  # False: the prefix itself only works inside one network


def _form(net: str, name: str, extract: Extract, carrier_reachable: bool) -> EmbeddedForm:
    return EmbeddedForm(ipaddress.IPv6Network(net), name, extract, carrier_reachable)


EMBEDDED_FORMS = (
    _form("::ffff:0:0/96", "IPv4-mapped", _low32, True),  # a dual-stack socket connects over IPv4
    _form("::/96", "IPv4-compatible (deprecated, RFC 4291 2.5.5.1)", _low32, True),
    _form("::ffff:0:0:0/96", "IPv4-translated (SIIT, RFC 2765)", _low32, False),
    _form("64:ff9b::/96", "NAT64 well-known prefix (RFC 6052)", _low32, True),
    # The local-use prefix may be cut at /48 to /96 (RFC 6052 2.2); read as /96, the usual.
    _form("64:ff9b:1::/48", "NAT64 local-use prefix (RFC 8215)", _low32, False),
    _form("2002::/16", "6to4 (RFC 3056)", _six_to_four, True),
    _form("2001::/32", "Teredo (RFC 4380)", _teredo, True),
)

# :: and ::1 are spelled inside ::/96 but are not IPv4-compatible: their own rows decide.
_NOT_EMBEDDED = ipaddress.IPv6Network("::/127")


def embedded_ipv4(ip: ipaddress.IPv6Address) -> tuple[EmbeddedForm, tuple[ipaddress.IPv4Address, ...]] | None:
    """The embedded-IPv4 form ``ip`` is written in and the IPv4 addresses it carries."""
    if ip in _NOT_EMBEDDED:
        return None
    for form in EMBEDDED_FORMS:
        if ip in form.network:
            return form, form.extract(ip)
    return None


def special_entry(ip: Address) -> Special | None:
    """The most specific registry row (or ``BEYOND_REGISTRIES`` row) containing ``ip``."""
    rows = [r for r in (*IPV4_SPECIAL, *IPV6_SPECIAL, *BEYOND_REGISTRIES) if r.network.version == ip.version]
    matches = [r for r in rows if ip in r.network]
    return max(matches, key=lambda r: r.network.prefixlen, default=None)


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
    reason = _judge(ip, allow_networks)
    return None if reason is None else f"{address} is not a public address: {reason}"


def _allowed(ip: Address, allow_networks: tuple[Network, ...]) -> bool:
    return any(ip.version == net.version and ip in net for net in allow_networks)


def _judge(ip: Address, allow_networks: tuple[Network, ...]) -> str | None:
    if _allowed(ip, allow_networks):
        return None
    if isinstance(ip, ipaddress.IPv6Address):
        embedded = embedded_ipv4(ip)
        if embedded is not None:
            form, carried = embedded
            if not form.carrier_reachable and not all(_allowed(v4, allow_networks) for v4 in carried):
                return f"{form.name} address, reachable only inside one network"
            for v4 in carried:
                reason = _judge(v4, allow_networks)
                if reason is not None:
                    return f"{form.name} address embedding {v4}, which is refused: {reason}"
            return None
    row = special_entry(ip)
    if row is not None and not row.globally_reachable:
        return f"{row.network} is {row.name} ({row.reference}), not globally reachable"
    if isinstance(ip, ipaddress.IPv6Address) and ip not in _IPV6_GLOBAL_UNICAST:
        return f"outside the IPv6 global unicast space {_IPV6_GLOBAL_UNICAST} (RFC 4291 2.4)"
    return None
