"""dns-01 through the RFC 2136 provider against a real BIND, which pebble resolves with."""

from __future__ import annotations

import uuid
from typing import Any

from psycopg_pool import AsyncConnectionPool

from certwatch.contracts import hosting as hc
from certwatch.contracts.payload import decode
from certwatch.hosting.dns_providers import Rfc2136, Tsig
from certwatch.platform.eventlog import EventLog
from tests.support.bind import bind
from tests.support.hosting import hosting, verify_chain
from tests.support.pebble import pebble


async def test_dns01_with_a_wildcard_through_rfc2136(
    pool: AsyncConnectionPool[Any], event_log: EventLog
) -> None:
    with (
        bind() as dns_server,
        pebble(nonce_reject_percent=0, dns_server=f"127.0.0.1:{dns_server.port}") as ca,
    ):
        provider = Rfc2136("127.0.0.1", dns_server.port, Tsig.parse(dns_server.tsig))
        label = f"h{uuid.uuid4().hex[:10]}"
        names = [f"{label}.example.net", f"*.{label}.example.net"]
        async for h in hosting(pool, event_log, ca, dns_provider=provider):
            _sub, instances = await h.use_cases.subscribe(h.account_id, 2, "test")
            instance_id = instances[0].instance_id
            await h.use_cases.apply(h.account_id, instance_id, names, "ec256", "Example Co", "ops@example.com",
                                    "dns-01", "test")  # fmt: skip
            await h.settle()
            assert h.responder.served == 0
        events = [decode(e) for e in await event_log.read_stream(hc.stream_id(instance_id))]
        (issued,) = [e for e in events if isinstance(e, hc.CertificateIssued)]
        assert sorted(issued.names) == sorted(names)
        verify_chain(issued.cert_pem, issued.chain_pem, ca.root_pem)
        assert dns_server.txt(f"_acme-challenge.{label}.example.net") == []  # cleaned up


async def test_a_refused_dns_update_fails_the_challenge(
    pool: AsyncConnectionPool[Any], event_log: EventLog
) -> None:
    with (
        bind() as dns_server,
        pebble(nonce_reject_percent=0, dns_server=f"127.0.0.1:{dns_server.port}") as ca,
    ):
        wrong = Rfc2136("127.0.0.1", dns_server.port, Tsig("certwatch-test.", "QUFBQUFBQUFBQUFBQUFBQQ=="))
        async for h in hosting(pool, event_log, ca, dns_provider=wrong):
            _sub, instances = await h.use_cases.subscribe(h.account_id, 2, "test")
            instance_id = instances[0].instance_id
            await h.use_cases.apply(h.account_id, instance_id, [f"h{uuid.uuid4().hex[:8]}.example.net"], "ec256",
                                    "Example Co", "ops@example.com", "dns-01", "test")  # fmt: skip
            await h.orchestrator.run_due()
        (failed,) = [e for e in (decode(e) for e in await event_log.read_stream(hc.stream_id(instance_id)))
                     if isinstance(e, hc.OrderFailed)]  # fmt: skip
        assert failed.kind == hc.FailureKind.CHALLENGE_FAILED and "DNS update" in failed.detail
