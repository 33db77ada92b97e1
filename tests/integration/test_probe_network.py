"""Connection-level failures, network policy and several addresses behind one name."""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import socket
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from certwatch.prober.tls_probe import ProbeOptions, probe
from certwatch.rules.causes import Cause, Status
from certwatch.rules.classify import Verdict, classify
from certwatch.rules.facts import ProbeResult
from tests.support.dns_server import dns_server
from tests.support.pki import TestPKI
from tests.support.tls_server import (
    closed_port,
    free_port_on,
    http_server,
    server_context,
    silent_server,
    tls_server,
)

HOST = "www.example.test"
LOOPBACK = (ipaddress.ip_network("127.0.0.0/8"),)


@pytest.fixture(scope="module")
def pki() -> Iterator[TestPKI]:
    with TestPKI() as built:
        yield built


def run(
    host: str, port: int, *, addresses: tuple[str, ...] = ("127.0.0.1",), **overrides: object
) -> ProbeResult:
    settings: dict[str, object] = {
        "allow_networks": LOOPBACK,
        "resolve": {(host, port): list(addresses)},
        "connect_timeout": 1.0,
        "handshake_timeout": 0.5,
        "overall": 3.0,
    }
    settings.update(overrides)
    return asyncio.run(probe(host, port, options=ProbeOptions(**settings)))  # type: ignore[arg-type]


def both(result: ProbeResult) -> tuple[Verdict, Verdict]:
    now = datetime.now(UTC)
    return classify(result, first_check=True, now=now), classify(result, first_check=False, now=now)


def test_plain_http_port() -> None:
    with http_server() as port:
        result = run(HOST, port)
    assert result.endpoints[0].error_kind == "no_tls" and result.endpoints[0].phase == "tls"
    enable, monitor = both(result)
    assert (enable.status, enable.primary_cause) == (Status.ENABLE_FAILED, Cause.INVALID_PORT)
    assert (monitor.status, monitor.primary_cause) == (Status.ABNORMAL, Cause.NO_SSL_CERTIFICATE)


def test_port_that_never_answers_times_out() -> None:
    with silent_server() as port:
        started = time.monotonic()
        result = run(HOST, port)
        elapsed = time.monotonic() - started
    assert 0.4 < elapsed < 2.0
    assert (result.endpoints[0].phase, result.endpoints[0].error_kind) == ("tls", "timeout")
    enable, monitor = both(result)
    assert enable.primary_cause is Cause.CONNECTION_FAILURE
    assert monitor.primary_cause is Cause.NETWORK_CONNECTION_FAILURE


def test_closed_port_is_refused() -> None:
    with closed_port() as port:
        result = run(HOST, port)
    assert (result.endpoints[0].phase, result.endpoints[0].error_kind) == ("tcp", "refused")
    enable, monitor = both(result)
    assert enable.causes == (Cause.CONNECTION_FAILURE,)
    assert monitor.causes == (Cause.NETWORK_CONNECTION_FAILURE,)


def test_unresolvable_name_fails_fast_without_network() -> None:
    result = run("no-such-host.invalid", 443, addresses=(), resolve={})
    assert result.dns_error and result.endpoints == ()
    enable, monitor = both(result)
    assert (enable.status, enable.primary_cause) == (Status.ENABLE_FAILED, Cause.INVALID_IP)
    assert monitor.primary_cause is Cause.NETWORK_CONNECTION_FAILURE


@pytest.mark.parametrize("address", ["127.0.0.1", "10.1.2.3", "169.254.169.254", "::1", "fe80::1"])
def test_non_public_addresses_are_refused_without_connecting(address: str) -> None:
    result = run(HOST, 443, addresses=(address,), allow_networks=())
    endpoint = result.endpoints[0]
    assert (endpoint.phase, endpoint.error_kind) == ("policy", "policy_refused")
    assert endpoint.connect_ms is None
    enable, monitor = both(result)
    assert enable.primary_cause is Cause.INVALID_DOMAIN
    assert monitor.primary_cause is Cause.NETWORK_CONNECTION_FAILURE


def test_one_stale_node_behind_round_robin_is_reported(pki: TestPKI) -> None:
    now = datetime.now(UTC)
    good = pki.server_files(pki.leaf(HOST))
    stale = pki.server_files(
        pki.leaf(HOST, not_before=now - timedelta(days=90), not_after=now - timedelta(days=1))
    )
    port = free_port_on(("127.0.0.1", "127.0.0.2"))
    with (
        tls_server(server_context(*good), "127.0.0.1", port),
        tls_server(server_context(*stale), "127.0.0.2", port),
    ):
        result = run(HOST, port, addresses=("127.0.0.1", "127.0.0.2"), ca_file=pki.ca_file)
    assert [e.phase for e in result.endpoints] == ["done", "done"]
    enable, monitor = both(result)
    assert enable.status is monitor.status is Status.ABNORMAL
    assert monitor.causes == (Cause.EXPIRED,)
    assert {f.ip for f in monitor.findings} == {"127.0.0.2"}
    assert monitor.days_left == -2


@contextlib.contextmanager
def loopback_listener() -> Iterator[tuple[int, socket.socket]]:
    """A listening socket on 127.0.0.1 that never accepts: a connection waits in its backlog."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(16)
        sock.setblocking(False)
        yield sock.getsockname()[1], sock


def connection_arrived(sock: socket.socket) -> bool:
    try:
        sock.accept()[0].close()
    except BlockingIOError:
        return False
    return True


# IPv6 spellings of 127.0.0.1 a resolver may hand back: NAT64, 6to4, IPv4-compatible, mapped.
LOOPBACK_IN_IPV6 = ["64:ff9b::7f00:1", "2002:7f00:1::1", "::7f00:1", "::ffff:7f00:1"]


@pytest.mark.parametrize("allow", [(), (ipaddress.ip_network("192.168.0.0/16"),)])
def test_embedded_loopback_from_dns_is_refused_without_connecting(
    allow: tuple[ipaddress.IPv4Network, ...],
) -> None:
    zone = {"evil.example.test": {"AAAA": LOOPBACK_IN_IPV6}}
    with dns_server(zone) as nameserver, loopback_listener() as (port, listener):
        result = run("evil.example.test", port, resolve={}, nameservers=[nameserver], allow_networks=allow)
        assert not connection_arrived(listener)
    assert [e.ip for e in result.endpoints] == LOOPBACK_IN_IPV6
    assert {(e.phase, e.error_kind, e.connect_ms) for e in result.endpoints} == {
        ("policy", "policy_refused", None)
    }
    enable, _ = both(result)
    assert (enable.status, enable.primary_cause) == (Status.ENABLE_FAILED, Cause.INVALID_DOMAIN)


def test_the_listener_does_see_an_allowed_mapped_loopback_probe() -> None:
    """The control for the test above: the same name, allowed, does reach the listener."""
    zone = {"evil.example.test": {"AAAA": ["::ffff:127.0.0.1"]}}
    with dns_server(zone) as nameserver, loopback_listener() as (port, listener):
        result = run("evil.example.test", port, resolve={}, nameservers=[nameserver], handshake_timeout=0.2)
        assert connection_arrived(listener)
    assert result.endpoints[0].phase == "tls"
