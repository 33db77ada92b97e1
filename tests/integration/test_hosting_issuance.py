"""A hosted instance issued through pebble: application, one order, HOSTED, key sealed."""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import replace
from datetime import timedelta
from typing import Any

import pytest
from psycopg_pool import AsyncConnectionPool

from certwatch.contracts import hosting as hc
from certwatch.contracts.payload import decode
from certwatch.hosting import acme_accounts
from certwatch.hosting.acme_client import Session
from certwatch.platform.eventlog import EventLog
from tests.support.hosting import Hosting, hosting, verify_chain
from tests.support.pebble import Pebble, pebble


def _name() -> str:
    return f"h{uuid.uuid4().hex[:10]}.example.com"


async def test_first_application_is_issued_and_hosted(h: Hosting, ca: Pebble, event_log: EventLog) -> None:
    _sub, instances = await h.use_cases.subscribe(h.account_id, 3, "test")
    assert [i.state for i in instances] == [hc.InstanceState.PENDING_APPLICATION, hc.InstanceState.NOT_ACTIVATED,
                                            hc.InstanceState.NOT_ACTIVATED]  # fmt: skip
    assert instances[0].next_instance_id == instances[1].instance_id
    assert instances[2].previous_instance_id == instances[1].instance_id
    names = [_name(), _name()]
    await h.use_cases.apply(h.account_id, instances[0].instance_id, names, "ec256", "Example Co",
                            "ops@example.com", "http-01", "test")  # fmt: skip
    await h.settle()
    view = await h.use_cases.lifecycle(h.account_id, instances[0].instance_id)
    assert view.instance.state == hc.InstanceState.HOSTED, view.last_failure
    assert [p.state for p in view.instance.history] == [
        hc.InstanceState.PENDING_APPLICATION,
        hc.InstanceState.APPLYING,
        hc.InstanceState.HOSTED,
    ]
    assert view.instance.orders_placed == 1
    (cert,) = await h.use_cases.certificates(h.account_id)
    assert sorted(cert.names) == sorted(names)
    _row, pem = await h.use_cases.download(h.account_id, cert.id, "pem", "")
    text = pem.decode()
    assert "PRIVATE KEY" in text
    leaf_pem = text.split("-----END CERTIFICATE-----")[0] + "-----END CERTIFICATE-----\n"
    chain_pem = text[len(leaf_pem) : text.index("-----BEGIN PRIVATE KEY")]
    verify_chain(leaf_pem, chain_pem, ca.root_pem)
    # The key never appears in clear in the log.
    key_body = text[text.index("-----BEGIN PRIVATE KEY") :].splitlines()[1]
    events = await event_log.read_stream(hc.stream_id(instances[0].instance_id))
    assert all(key_body not in str(e.data) for e in events)
    # No ARI at pebble: renewal when a third of the lifetime is left, counted from notBefore.
    (issued,) = [p for p in map(decode, events) if isinstance(p, hc.CertificateIssued)]
    lifetime = issued.certificate.not_after - issued.certificate.not_before
    assert issued.renew_source == "lifetime"
    assert issued.renew_at == issued.certificate.not_after - lifetime / 3
    assert view.next_renewal == issued.renew_at


async def test_renewal_time_is_put_on_this_clock_when_the_cas_differs(h: Hosting) -> None:
    """This clock 30 days ahead of pebble's (an injected clock, as the lifecycle tests run):
    the renewal time is pebble's notBefore + 2/3 of the lifetime, moved onto this clock."""
    h.clock.advance(timedelta(days=30))
    _sub, instances = await h.use_cases.subscribe(h.account_id, 2, "test")
    await h.use_cases.apply(h.account_id, instances[0].instance_id, [_name()], "ec256", "Example Co",
                            "ops@example.com", "http-01", "test")  # fmt: skip
    await h.settle()
    view = await h.use_cases.lifecycle(h.account_id, instances[0].instance_id)
    (cert,) = await h.use_cases.certificates(h.account_id)
    ca_time = cert.not_after - (cert.not_after - cert.not_before) / 3
    assert view.next_renewal is not None
    assert abs(view.next_renewal - (ca_time + timedelta(days=30))) < timedelta(seconds=10)


EAB_KID, EAB_KEY = "kid-1", "zWNDZM6eQGHWpSRTPal5eIUYFTu7EajVIoguysqZ9wG44nMEtx3MUAsUDkMTQ12W"


async def test_external_account_binding_for_a_ca_that_requires_it(
    pool: AsyncConnectionPool[Any], event_log: EventLog
) -> None:
    with pebble(nonce_reject_percent=0, eab_keys={EAB_KID: EAB_KEY}) as commercial:
        async for h in hosting(pool, event_log, commercial):
            _sub, instances = await h.use_cases.subscribe(h.account_id, 2, "test")
            instance_id = instances[0].instance_id
            await h.use_cases.apply(h.account_id, instance_id, [_name()], "ec256", "Example Co", "ops@example.com",
                                    "http-01", "test")  # fmt: skip
            await h.orchestrator.run_due()
            (failed,) = [decode(e) for e in await event_log.read_stream(hc.stream_id(instance_id))
                         if e.type == hc.OrderFailed.TYPE]  # fmt: skip
            assert isinstance(failed, hc.OrderFailed) and failed.kind == hc.FailureKind.CA_ERROR
            assert "externalAccountRequired" in failed.detail
            h.orchestrator.ca = replace(h.orchestrator.ca, eab_kid=EAB_KID, eab_hmac_key=EAB_KEY)
            h.clock.now = failed.retry_at
            await h.settle()
            view = await h.use_cases.lifecycle(h.account_id, instance_id)
            assert view.instance.state == hc.InstanceState.HOSTED


async def test_more_due_instances_than_pooled_connections_all_get_issued(
    h: Hosting, event_log: EventLog
) -> None:
    """Each instance at work holds a connection for its lock: more of them than the pool
    (20 connections) must queue, not starve the pool."""
    ids = []
    for _ in range(24):
        _sub, instances = await h.use_cases.subscribe(h.account_id, 2, "test")
        await h.use_cases.apply(h.account_id, instances[0].instance_id, [_name()], "ec256", "Example Co",
                                "ops@example.com", "http-01", "test")  # fmt: skip
        ids.append(instances[0].instance_id)
    assert await asyncio.wait_for(h.orchestrator.run_due(limit=50), 120) == 24
    views = {v.instance.instance_id: v for v in await h.use_cases.instances(h.account_id)}
    assert all(views[i].instance.state == hc.InstanceState.HOSTED for i in ids), [
        views[i].last_failure for i in ids
    ]


async def test_orders_of_one_account_starting_together_register_its_key_once(
    h: Hosting, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Concurrent registrations of one key race at the CA (pebble answered one of 24 orders
    'serverInternal: Error saving account'): one session registers, the others take its URL."""
    registered: list[str | None] = []
    register = Session.register

    def counted(self: Session, email: str | None) -> str:
        registered.append(email)
        return register(self, email)

    monkeypatch.setattr(Session, "register", counted)
    o = h.orchestrator
    sessions = await asyncio.wait_for(asyncio.gather(*(
        acme_accounts.session(o.pool, o.vault, o.ca, h.account_id, "ops@example.com") for _ in range(8)
    )), 60)  # fmt: skip
    assert registered == ["ops@example.com"]
    uris = {s.net.account.uri if s.net.account is not None else None for s in sessions}
    assert len(uris) == 1 and None not in uris
