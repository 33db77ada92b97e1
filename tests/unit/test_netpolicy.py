"""The probe's address policy: every special-purpose range and every IPv4-in-IPv6 form."""

from __future__ import annotations

import ipaddress

import pytest

from certwatch.prober.netpolicy import (
    BEYOND_REGISTRIES,
    EMBEDDED_FORMS,
    IPV4_SPECIAL,
    IPV6_SPECIAL,
    Special,
    refusal_reason,
    special_entry,
)

LOOPBACK = (ipaddress.ip_network("127.0.0.0/8"),)
INTRANET = (ipaddress.ip_network("10.0.0.0/8"), ipaddress.ip_network("fd00:1::/32"))

# (address, why it is refused); each embeds or lies in a range no public server uses.
REFUSED = [
    # IPv4-mapped, IPv4-compatible and SIIT spellings of loopback, private and metadata hosts
    ("::ffff:127.0.0.1", "IPv4-mapped"),
    ("::ffff:169.254.169.254", "IPv4-mapped"),
    ("::7f00:1", "IPv4-compatible"),
    ("::a00:1", "IPv4-compatible"),
    ("::ffff:0:808:808", "SIIT"),  # the carrier itself is local, whatever it embeds
    # NAT64: the well-known prefix judged by what it embeds; the local-use prefix refused
    ("64:ff9b::7f00:1", "NAT64 well-known"),
    ("64:ff9b::a9fe:a9fe", "NAT64 well-known"),
    ("64:ff9b::c0a8:1", "NAT64 well-known"),
    ("64:ff9b:1::808:808", "NAT64 local-use"),
    ("64:ff9b:1::7f00:1", "NAT64 local-use"),
    # 6to4: the router's IPv4 address sits in bits 16-47
    ("2002:7f00:1::1", "6to4"),
    ("2002:a00:1::1", "6to4"),
    ("2002:c0a8:101::1", "6to4"),
    # Teredo: server in bits 32-63, client inverted in the last 32 bits (RFC 4380's example
    # client is 192.0.2.45, documentation space)
    ("2001:0:4136:e378:8000:63bf:3fff:fdd2", "Teredo"),
    ("2001:0:7f00:1::f7f7:f7f7", "Teredo"),  # server 127.0.0.1
    ("2001:0:808:808::80ff:fffe", "Teredo"),  # client 127.0.0.1
    # IPv4 registry rows
    ("0.0.0.0", "This host"),
    ("0.1.2.3", "This network"),
    ("10.1.2.3", "Private-Use"),
    ("100.64.0.1", "Shared Address Space"),
    ("127.0.0.1", "Loopback"),
    ("169.254.169.254", "Link Local"),
    ("172.16.0.1", "Private-Use"),
    ("192.0.0.1", "Service Continuity"),
    ("192.0.0.8", "dummy"),
    ("192.0.0.100", "IETF Protocol Assignments"),
    ("192.0.0.170", "NAT64/DNS64 Discovery"),
    ("192.0.2.1", "TEST-NET-1"),
    ("192.88.99.1", "6to4 Relay Anycast"),
    ("192.168.1.1", "Private-Use"),
    ("198.18.0.1", "Benchmarking"),
    ("198.19.255.255", "Benchmarking"),
    ("198.51.100.1", "TEST-NET-2"),
    ("203.0.113.1", "TEST-NET-3"),
    ("240.0.0.1", "Reserved"),
    ("255.255.255.255", "Limited Broadcast"),
    ("224.0.0.1", "Multicast"),
    ("239.255.255.250", "Multicast"),
    # IPv6 registry rows
    ("::", "Unspecified"),
    ("::1", "Loopback"),
    ("100::1", "Discard-Only"),
    ("100:0:0:1::1", "Dummy IPv6"),
    ("2001:2::1", "Benchmarking"),
    ("2001:5::1", "IETF Protocol Assignments"),
    ("2001:10::1", "ORCHID"),
    ("2001:20::1", "ORCHIDv2"),
    ("2001:30::1", "DETs"),
    ("2001:db8::1", "Documentation"),
    ("3fff::1", "Documentation"),
    ("5f00::1", "SRv6"),
    ("fc00::1", "Unique-Local"),
    ("fd12:3456::1", "Unique-Local"),
    ("fe80::1", "Link-Local"),
    ("fe80::1%eth0", "Link-Local"),
    ("fec0::1", "site-local"),
    ("ff02::1", "Multicast"),
    ("ff0e::1", "Multicast"),
    ("4000::1", "global unicast space"),
    ("1::1", "global unicast space"),
]

# Public addresses, including special-purpose rows the registry calls globally reachable
# and embedded forms whose IPv4 address is public.
ACCEPTED = [
    "8.8.8.8",
    "1.1.1.1",
    "192.0.0.9",  # PCP anycast
    "192.0.0.10",  # TURN anycast
    "192.31.196.1",  # AS112-v4
    "192.52.193.1",  # AMT
    "192.175.48.1",  # AS112 direct delegation
    "2001:4860:4860::8888",
    "2606:4700:4700::1111",
    "2001:1::1",  # PCP anycast
    "2001:1::2",  # TURN anycast
    "2001:1::3",  # DNS-SD SRP anycast
    "2001:3::1",  # AMT
    "2001:4:112::1",  # AS112-v6
    "2620:4f:8000::1",  # AS112 direct delegation
    "::ffff:8.8.8.8",
    "64:ff9b::808:808",
    "2002:808:808::1",
    "2001:0:808:808::f7f7:f7f7",  # Teredo: server 8.8.8.8, client 8.8.8.8
]


@pytest.mark.parametrize(("address", "why"), REFUSED)
def test_refused_before_connecting(address: str, why: str) -> None:
    reason = refusal_reason(address, ())
    assert reason is not None and why.lower() in reason.lower(), reason


@pytest.mark.parametrize("address", ACCEPTED)
def test_public_addresses_are_probed(address: str) -> None:
    assert refusal_reason(address, ()) is None


CARRIERS = {form.network for form in EMBEDDED_FORMS}
ROWS = [r for r in (*IPV4_SPECIAL, *IPV6_SPECIAL, *BEYOND_REGISTRIES) if r.network not in CARRIERS]


@pytest.mark.parametrize("row", ROWS, ids=lambda r: str(r.network))
def test_each_registry_row_decides_by_its_globally_reachable_column(row: Special) -> None:
    # Near the end: the first address is often in a more specific row (and so is the last
    # of 240.0.0.0/4, the limited broadcast).
    last = row.network[-2] if row.network.num_addresses > 1 else row.network[0]
    assert special_entry(last) == row
    assert (refusal_reason(str(last), ()) is None) is row.globally_reachable


@pytest.mark.parametrize(
    ("address", "allow", "allowed"),
    [
        ("127.0.0.1", LOOPBACK, True),
        ("::ffff:127.0.0.1", LOOPBACK, True),  # an allowed host is allowed in every spelling
        ("::7f00:1", LOOPBACK, True),
        ("64:ff9b::7f00:1", LOOPBACK, True),
        ("2002:7f00:1::1", LOOPBACK, True),
        ("2001:0:7f00:1::80ff:fffe", LOOPBACK, True),  # Teredo: server and client both allowed
        ("2001:0:7f00:1::f5ff:fffe", LOOPBACK, False),  # client 10.0.0.1 is not
        ("64:ff9b:1::a00:5", INTRANET, True),  # a local NAT64 to an allowed IPv4 network
        ("64:ff9b:1::7f00:1", INTRANET, False),
        ("fd00:1::5", INTRANET, True),
        ("fd00:2::5", INTRANET, False),
        ("::ffff:10.9.9.9", INTRANET, True),
        ("::ffff:127.0.0.1", INTRANET, False),
        ("10.9.9.9", (ipaddress.ip_network("::a00:0/104"),), False),  # versions never mix
    ],
)
def test_allow_list_admits_configured_ranges_and_their_embedded_spellings(
    address: str, allow: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...], allowed: bool
) -> None:
    assert (refusal_reason(address, allow) is None) is allowed


def test_reason_names_the_embedded_address_and_the_rule() -> None:
    reason = refusal_reason("64:ff9b::7f00:1", ())
    assert reason is not None
    assert "127.0.0.1" in reason and "Loopback" in reason and "not globally reachable" in reason


def test_not_an_address() -> None:
    assert refusal_reason("example.com", ()) == "'example.com' is not an IP address"
