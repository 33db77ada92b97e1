"""An orchestrator killed mid-order: the next one resumes the recorded order, never a second."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Sequence
from typing import Any

import pytest
from psycopg_pool import AsyncConnectionPool

from certwatch.contracts import hosting as hc
from certwatch.contracts.payload import decode
from certwatch.hosting import acme_accounts
from certwatch.hosting.orchestrator import Orchestrator
from certwatch.platform.eventlog import EventLog
from certwatch.platform.shredding import new_master_key
from tests.support.hosting import Hosting, hosting, verify_chain
from tests.support.pebble import Pebble

WAIT_S = 60.0


async def _types(event_log: EventLog, instance_id: str) -> list[Any]:
    return [decode(e) for e in await event_log.read_stream(hc.stream_id(instance_id))]


async def test_killed_mid_order_resumes_the_same_order(
    pool: AsyncConnectionPool[Any], event_log: EventLog, database_url: str, ca: Pebble
) -> None:
    master_key = new_master_key()
    async for h in hosting(pool, event_log, ca, master_key=master_key):
        _sub, instances = await h.use_cases.subscribe(h.account_id, 2, "test")
        instance_id = instances[0].instance_id
        name = f"h{uuid.uuid4().hex[:10]}.example.com"
        await h.use_cases.apply(h.account_id, instance_id, [name], "ec256", "Example Co", "ops@example.com",
                                "http-01", "test")  # fmt: skip
        child = subprocess.Popen(
            [sys.executable, "-m", "tests.support.hosting_child", database_url, ca.directory, ca.ca_file, master_key],
            stdout=subprocess.PIPE, env={**os.environ}, cwd=os.getcwd(),
        )  # fmt: skip
        try:
            deadline = time.monotonic() + WAIT_S
            while not any(isinstance(e, hc.OrderPlaced) for e in await _types(event_log, instance_id)):
                assert child.poll() is None, "the child orchestrator exited"
                assert time.monotonic() < deadline, "no order was placed in time"
                await asyncio.sleep(0.1)
            assert child.stdout is not None
            assert await asyncio.wait_for(asyncio.to_thread(child.stdout.readline), WAIT_S) == b"stalled\n"
        finally:
            child.send_signal(signal.SIGKILL)
            child.wait(10)
            if child.stdout is not None:
                child.stdout.close()
        events = await _types(event_log, instance_id)
        assert not any(isinstance(e, hc.CertificateIssued) for e in events)
        (placed,) = [e for e in events if isinstance(e, hc.OrderPlaced)]

        deadline = time.monotonic() + WAIT_S
        while not any(isinstance(e, hc.CertificateIssued) for e in await _types(event_log, instance_id)):
            assert time.monotonic() < deadline, "the order was not resumed in time"
            await h.orchestrator.run_due()  # the dead child's lock goes with its connection
            await asyncio.sleep(0.1)
        assert h.orchestrator.orders_placed == 0
        events = await _types(event_log, instance_id)
        assert [e.order_url for e in events if isinstance(e, hc.OrderPlaced)] == [placed.order_url]
        (issued,) = [e for e in events if isinstance(e, hc.CertificateIssued)]
        assert issued.order_url == placed.order_url
        verify_chain(issued.certificate.cert_pem, issued.certificate.chain_pem, ca.root_pem)


class _Crash(BaseException):
    """Stands for the process dying: nothing in the orchestrator catches it."""


class _DiesBeforeRecordingTheOrder(Orchestrator):
    async def _record(self, changes: Sequence[Any]) -> None:
        if any(isinstance(e, hc.OrderPlaced) for _, _, events in changes for e in events):
            raise _Crash
        await super()._record(changes)


async def test_an_order_placed_but_not_recorded_is_adopted_not_placed_again(
    h: Hosting, event_log: EventLog, ca: Pebble
) -> None:
    _sub, instances = await h.use_cases.subscribe(h.account_id, 2, "test")
    instance_id = instances[0].instance_id
    await h.use_cases.apply(h.account_id, instance_id, [f"h{uuid.uuid4().hex[:10]}.example.com"], "ec256",
                            "Example Co", "ops@example.com", "http-01", "test")  # fmt: skip
    o = h.orchestrator
    dying = _DiesBeforeRecordingTheOrder(event_log, h.vault, o.ca, o.solver, clock=h.clock)
    with pytest.raises(_Crash):
        await dying.run_due()
    assert dying.orders_placed == 1
    assert not any(isinstance(e, hc.OrderPlaced) for e in await _types(event_log, instance_id))
    await h.settle()
    events = await _types(event_log, instance_id)
    (placed,) = [e for e in events if isinstance(e, hc.OrderPlaced)]
    assert placed.adopted and o.orders_placed == 0
    assert any(isinstance(e, hc.CertificateIssued) for e in events)
    session = await acme_accounts.session(o.pool, h.vault, o.ca, h.account_id, None)
    assert session.net.account is not None
    account = await asyncio.to_thread(lambda: session.client._post_as_get(session.net.account.uri).json())
    listed = await asyncio.to_thread(lambda: session.client._post_as_get(account["orders"]).json()["orders"])
    assert listed == [placed.order_url]  # one order at the CA in all


class _CaListsNoOrders(_DiesBeforeRecordingTheOrder):
    """The same crash at a CA that does not list an account's orders (Let's Encrypt's Boulder)."""

    async def _adoptable(self, session: Any, csr: bytes) -> str | None:
        return None


class _ReplaysAtACaThatListsNoOrders(Orchestrator):
    async def _adoptable(self, session: Any, csr: bytes) -> str | None:
        return None


async def test_without_an_order_list_the_replay_finalizes_one_order_and_leaves_at_most_one_unanswered(
    h: Hosting, event_log: EventLog, ca: Pebble
) -> None:
    """What remains when the CA cannot list orders: the recorded intent (key and CSR) is
    replayed as newOrder. Boulder answers a replay with the same pending or ready order
    (order reuse); pebble, which does not reuse, makes a second one. Either way exactly one
    order is answered and finalized, with the recorded key: one certificate, and at most
    one order left pending at the CA, never validated, until it expires."""
    _sub, instances = await h.use_cases.subscribe(h.account_id, 2, "test")
    instance_id = instances[0].instance_id
    await h.use_cases.apply(h.account_id, instance_id, [f"h{uuid.uuid4().hex[:10]}.example.com"], "ec256",
                            "Example Co", "ops@example.com", "http-01", "test")  # fmt: skip
    o = h.orchestrator
    with pytest.raises(_Crash):
        await _CaListsNoOrders(event_log, h.vault, o.ca, o.solver, clock=h.clock).run_due()
    replaying = _ReplaysAtACaThatListsNoOrders(event_log, h.vault, o.ca, o.solver, clock=h.clock)
    for _ in range(10):
        if await replaying.run_due() == 0:
            break
    events = await _types(event_log, instance_id)
    (requested,) = [e for e in events if isinstance(e, hc.OrderRequested)]
    (placed,) = [e for e in events if isinstance(e, hc.OrderPlaced)]
    (issued,) = [e for e in events if isinstance(e, hc.CertificateIssued)]
    assert not placed.adopted and issued.order_url == placed.order_url
    assert issued.sealed_key == requested.sealed_key  # the key recorded before the first newOrder
    session = await acme_accounts.session(o.pool, h.vault, o.ca, h.account_id, None)
    assert session.net.account is not None

    def statuses() -> dict[str, list[str]]:
        account = session.client._post_as_get(session.net.account.uri).json()  # type: ignore[union-attr]
        found: dict[str, list[str]] = {}
        for url in session.client._post_as_get(account["orders"]).json()["orders"]:
            order = session.client._post_as_get(url).json()
            authz = [session.client._post_as_get(a).json()["status"] for a in order["authorizations"]]
            found[url] = [order["status"], *authz]
        return found

    at_ca = await asyncio.to_thread(statuses)
    assert at_ca.pop(placed.order_url)[0] == "valid"
    assert [s for s in at_ca.values()] == [["pending", "pending"]]  # the orphan: never answered
