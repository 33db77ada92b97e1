"""IPv6: a dual-stack name is probed on its A and AAAA addresses alike."""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from datetime import UTC, datetime, timedelta

import pytest

from certwatch.prober.options import ProbeOptions
from certwatch.prober.tls_probe import probe
from certwatch.rules.causes import Cause, Status
from certwatch.rules.classify import classify
from tests.support.pki import TestPKI
from tests.support.tls_server import free_port_on, server_context, tls_server


def _ipv6_loopback() -> bool:
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as sock:
            sock.bind(("::1", 0))
    except OSError:
        return False
    return True


pytestmark = pytest.mark.skipif(not _ipv6_loopback(), reason="this host has no IPv6 loopback (::1)")


def test_dual_stack_name_is_probed_on_both_families_and_a_stale_v6_node_is_named() -> None:
    now = datetime.now(UTC)
    with TestPKI() as pki:
        good = pki.server_files(pki.leaf("dual.test"))
        stale = pki.server_files(
            pki.leaf("dual.test", not_before=now - timedelta(days=60), not_after=now - timedelta(days=1))
        )
        port = free_port_on(("127.0.0.1", "::1"))
        with (
            tls_server(server_context(*good), "127.0.0.1", port),
            tls_server(server_context(*stale), "::1", port),
        ):
            options = ProbeOptions(
                ca_file=pki.ca_file, resolve={("dual.test", port): ["127.0.0.1", "::1"]},
                allow_networks=(ipaddress.ip_network("127.0.0.0/8"), ipaddress.ip_network("::1/128")),
                connect_timeout=1, handshake_timeout=1, overall=3, check_ocsp=False,
            )  # fmt: skip
            result = asyncio.run(probe("dual.test", port, options=options))
    assert [e.ip for e in result.endpoints] == ["127.0.0.1", "::1"]
    assert all(e.phase == "done" for e in result.endpoints)
    verdict = classify(result, first_check=False, now=datetime.now(UTC))
    assert (verdict.status, verdict.primary_cause) == (Status.ABNORMAL, Cause.EXPIRED)
    assert {f.ip for f in verdict.findings} == {"::1"}
