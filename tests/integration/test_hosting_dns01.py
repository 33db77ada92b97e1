"""dns-01 through the RFC 2136 provider against a real BIND, which pebble resolves with."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from psycopg_pool import AsyncConnectionPool

from certwatch.contracts import hosting as hc
from certwatch.contracts.payload import decode
from certwatch.hosting.dns_providers import Rfc2136, Tsig
from certwatch.platform.eventlog import EventLog
from tests.support.bind import Bind, bind
from tests.support.hosting import Hosting, hosting, verify_chain
from tests.support.pebble import Pebble, pebble

WRONG_SECRET = "QUFBQUFBQUFBQUFBQUFBQQ=="


@asynccontextmanager
async def _dns01(
    pool: AsyncConnectionPool[Any], event_log: EventLog, names: list[str], *, secret: str | None = None
) -> AsyncIterator[tuple[Hosting, Bind, Pebble, str]]:
    """An instance applied for with dns-01 for `names`, a provider signing with `secret`
    (default: the key BIND takes)."""
    with bind() as server, pebble(nonce_reject_percent=0, dns_server=f"127.0.0.1:{server.port}") as ca:
        tsig = Tsig.parse(server.tsig) if secret is None else Tsig("certwatch-test.", secret)
        async for h in hosting(pool, event_log, ca, dns_provider=Rfc2136("127.0.0.1", server.port, tsig)):
            _sub, instances = await h.use_cases.subscribe(h.account_id, 2, "test")
            instance_id = instances[0].instance_id
            await h.use_cases.apply(h.account_id, instance_id, names, "ec256", "Example Co", "ops@example.com",
                                    "dns-01", "test")  # fmt: skip
            yield h, server, ca, instance_id


async def _events(event_log: EventLog, instance_id: str) -> list[Any]:
    return [decode(e) for e in await event_log.read_stream(hc.stream_id(instance_id))]


async def test_dns01_with_a_wildcard_through_rfc2136(
    pool: AsyncConnectionPool[Any], event_log: EventLog
) -> None:
    label = f"h{uuid.uuid4().hex[:10]}"
    names = [f"{label}.example.net", f"*.{label}.example.net"]
    async with _dns01(pool, event_log, names) as (h, server, ca, instance_id):
        await h.settle()
        assert h.responder.served == 0
        (issued,) = [e for e in await _events(event_log, instance_id) if isinstance(e, hc.CertificateIssued)]
        assert sorted(issued.certificate.names) == sorted(names)
        verify_chain(issued.certificate.cert_pem, issued.certificate.chain_pem, ca.root_pem)
        assert server.txt(f"_acme-challenge.{label}.example.net") == []  # cleaned up


async def test_a_refused_dns_update_fails_the_challenge(
    pool: AsyncConnectionPool[Any], event_log: EventLog
) -> None:
    names = [f"h{uuid.uuid4().hex[:8]}.example.net"]
    async with _dns01(pool, event_log, names, secret=WRONG_SECRET) as (h, _server, _ca, instance_id):
        await h.orchestrator.run_due()
        (failed,) = [e for e in await _events(event_log, instance_id) if isinstance(e, hc.OrderFailed)]
        assert failed.kind == hc.FailureKind.CHALLENGE_FAILED and "DNS update" in failed.detail
