"""The stub resolver against a real (local) DNS server: answers, CNAMEs, failures, TCP fallback."""

from __future__ import annotations

import ipaddress
import itertools
import json
import time

import pytest

from certwatch.platform.dns import RESEND_AFTER_S, UDP_ATTEMPTS, parse_nameserver, resend_waits, resolve
from tests.support.dns_server import dns_server

ZONE = {
    "www.example.test": {"A": ["127.0.0.1", "127.0.0.2"], "AAAA": ["::1"]},
    "alias.example.test": {"CNAME": "www.example.test"},
    "v4only.example.test": {"A": ["127.0.0.3"]},
    "empty.example.test": {},
    "broken.example.test": {"rcode": 2},
    "slow.example.test": {"silent": True},
    "big.example.test": {"tc": True, "A": [f"127.0.1.{i}" for i in range(1, 40)]},
}


async def test_a_and_aaaa_in_order() -> None:
    with dns_server(ZONE) as server:
        addresses, error = await resolve("www.example.test", [server], timeout=2)
    assert error is None
    assert addresses == ["127.0.0.1", "127.0.0.2", "::1"]


async def test_cname_chain_is_followed_and_case_ignored() -> None:
    with dns_server(ZONE) as server:
        addresses, error = await resolve("ALIAS.example.test", [server], timeout=2)
    assert (addresses, error) == (["127.0.0.1", "127.0.0.2", "::1"], None)


async def test_truncated_udp_answer_is_retried_over_tcp() -> None:
    with dns_server(ZONE) as server:
        addresses, error = await resolve("big.example.test", [server], timeout=2)
    assert error is None and len(addresses) == 39


@pytest.mark.parametrize(
    ("name", "expected"),
    [("missing.example.test", "does not exist"), ("empty.example.test", "no A or AAAA"),
     ("broken.example.test", "server failure")],
)  # fmt: skip
async def test_failures_are_data(name: str, expected: str) -> None:
    with dns_server(ZONE) as server:
        addresses, error = await resolve(name, [server], timeout=2)
    assert addresses == [] and error is not None and expected in error


async def test_a_silent_server_times_out_and_the_next_one_answers() -> None:
    with (
        dns_server({"slow.example.test": {"silent": True}}) as silent,
        dns_server({"slow.example.test": {"A": ["127.0.0.9"]}}) as good,
    ):
        start = time.monotonic()
        addresses, error = await resolve("slow.example.test", [silent, good], timeout=1.0)
        assert time.monotonic() - start < 1.5
    assert (addresses, error) == (["127.0.0.9"], None)


async def test_a_lost_datagram_is_sent_again_within_the_timeout() -> None:
    with dns_server({"lossy.example.test": {"A": ["192.0.2.7"], "drop_first": 2}}) as lossy:
        addresses, error = await resolve("lossy.example.test", [lossy], timeout=1.5)
    assert (addresses, error) == (["192.0.2.7"], None)


async def test_a_lost_datagram_costs_about_a_second_not_a_third_of_a_long_timeout() -> None:
    with dns_server({"lossy.example.test": {"A": ["192.0.2.7"], "drop_first": 1}}) as lossy:
        start = time.monotonic()
        addresses, error = await resolve("lossy.example.test", [lossy], timeout=12.0)
        took = time.monotonic() - start
    assert (addresses, error) == (["192.0.2.7"], None)
    assert 0.9 < took < 2.0


@pytest.mark.parametrize("timeout", [0.3, 1.5, 4.0, 12.4, 60.0])
def test_resends_back_off_and_fit_in_the_timeout(timeout: float) -> None:
    waits = resend_waits(timeout)
    assert len(waits) + 1 >= UDP_ATTEMPTS
    assert waits[0] <= RESEND_AFTER_S
    assert all(b == 2 * a for a, b in itertools.pairwise(waits))
    assert sum(waits) < timeout


async def test_no_server_answers_in_time() -> None:
    with dns_server(ZONE) as server:
        addresses, error = await resolve("slow.example.test", [server], timeout=0.3)
    assert addresses == [] and error is not None and "in time" in error


@pytest.mark.parametrize(("text", "parsed"), [("127.0.0.53", ("127.0.0.53", 53)),
                                              ("127.0.0.1:5353", ("127.0.0.1", 5353)),
                                              ("[::1]:53", ("::1", 53)), ("::1", ("::1", 53))])  # fmt: skip
def test_parse_nameserver(text: str, parsed: tuple[str, int]) -> None:
    assert parse_nameserver(text) == parsed


@pytest.mark.parametrize("text", ["dns.google", "1.2.3.4:0", "1.2.3.4:x", "[::1"])
def test_parse_nameserver_refuses_garbage(text: str) -> None:
    with pytest.raises(ValueError, match="nameserver"):
        parse_nameserver(text)


async def test_probe_uses_the_configured_nameservers() -> None:
    from certwatch.prober.options import ProbeOptions
    from certwatch.prober.tls_probe import probe
    from tests.support.tls_server import closed_port

    with dns_server(ZONE) as server, closed_port() as port:
        options = ProbeOptions(nameservers=[server], allow_networks=[ipaddress.ip_network("127.0.0.0/8")],
                               connect_timeout=1, handshake_timeout=1, overall=3)  # fmt: skip
        result = await probe("v4only.example.test", port, options=options)
        missing = await probe("missing.example.test", port, options=options)
    assert result.addresses == ("127.0.0.3",) and result.dns_error is None
    assert missing.addresses == () and "does not exist" in (missing.dns_error or "")


def test_check_cli_takes_dns_servers(capsys: pytest.CaptureFixture[str]) -> None:
    from certwatch.cli.main import main

    with dns_server(ZONE) as (ip, port):
        code = main(["check", "--json", "--dns-server", f"{ip}:{port}", "--allow-network", "127.0.0.0/8",
                     "--timeout", "2", "missing.example.test"])  # fmt: skip
    out = json.loads(capsys.readouterr().out)
    assert code == 1 and out[0]["primary_cause"] == "NETWORK_CONNECTION_FAILURE"
