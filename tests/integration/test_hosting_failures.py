"""Failed orders: recorded, backed off (exponentially, capped, after the CA's Retry-After), one
order in flight per instance; and ARI windows when the CA offers them."""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta
from typing import Any

import pytest
from psycopg_pool import AsyncConnectionPool

from certwatch.contracts import hosting as hc
from certwatch.contracts.payload import decode
from certwatch.hosting.acme_client import CaConfig
from certwatch.hosting.orchestrator import Orchestrator
from certwatch.platform.eventlog import EventLog
from certwatch.platform.localstack import free_port
from tests.support.acme_front import acme_front
from tests.support.hosting import Hosting, Silent, hosting
from tests.support.pebble import Pebble, pebble


async def _applied(h: Hosting) -> str:
    _sub, instances = await h.use_cases.subscribe(h.account_id, 2, "test")
    name = f"h{uuid.uuid4().hex[:10]}.example.com"
    await h.use_cases.apply(h.account_id, instances[0].instance_id, [name], "", "Example Co", "ops@example.com",
                            "", "test")  # fmt: skip
    return instances[0].instance_id


async def _events(event_log: EventLog, instance_id: str) -> list[Any]:
    return [decode(e) for e in await event_log.read_stream(hc.stream_id(instance_id))]


async def test_a_failed_challenge_is_recorded_and_retried_with_a_new_order(
    h: Hosting, event_log: EventLog
) -> None:
    instance_id = await _applied(h)
    answer = h.orchestrator.solver
    h.orchestrator.solver = Silent()  # the responder knows no token: pebble gets 404
    await h.orchestrator.run_due()
    (failed,) = [e for e in await _events(event_log, instance_id) if isinstance(e, hc.OrderFailed)]
    assert failed.kind == hc.FailureKind.CHALLENGE_FAILED and failed.order_abandoned and failed.failures == 1
    assert timedelta(seconds=15) <= failed.retry_at - failed.at <= timedelta(seconds=30)
    assert await h.orchestrator.run_due() == 0  # backing off: nothing due before retry_at
    h.orchestrator.solver = answer
    h.clock.now = failed.retry_at
    await h.settle()
    events = await _events(event_log, instance_id)
    assert sum(isinstance(e, hc.OrderPlaced) for e in events) == 2
    assert isinstance(events[-1], hc.InstanceStateChanged) and events[-1].state == hc.InstanceState.HOSTED


async def test_the_ca_unreachable_backs_off_exponentially_up_to_the_cap(
    pool: AsyncConnectionPool[Any], h: Hosting, event_log: EventLog
) -> None:
    instance_id = await _applied(h)
    h.orchestrator.ca = CaConfig(
        f"https://127.0.0.1:{free_port()}/dir", h.orchestrator.ca.ca_file, timeout_s=2
    )
    delays = []
    for _ in range(14):
        await h.orchestrator.run_due()
        failed = [e for e in await _events(event_log, instance_id) if isinstance(e, hc.OrderFailed)][-1]
        assert failed.kind == hc.FailureKind.CA_UNREACHABLE
        delays.append(failed.retry_at - failed.at)
        h.clock.now = failed.retry_at
    assert [d.total_seconds() for d in delays[:4]] == pytest.approx([22.5, 45, 90, 180], rel=0.34)
    assert all(d <= timedelta(hours=6) for d in delays) and delays[-1] >= timedelta(hours=3)
    assert not any(isinstance(e, hc.OrderPlaced) for e in await _events(event_log, instance_id))


async def test_rate_limited_waits_for_the_retry_after(h: Hosting, ca: Pebble, event_log: EventLog) -> None:
    async with acme_front(ca, limit_orders=1, retry_after_s=3600) as front:
        h.orchestrator.ca = CaConfig(front.directory, ca.ca_file)
        instance_id = await _applied(h)
        await h.orchestrator.run_due()
        (failed,) = [e for e in await _events(event_log, instance_id) if isinstance(e, hc.OrderFailed)]
        assert failed.kind == hc.FailureKind.RATE_LIMITED and "too many" in failed.detail
        assert failed.retry_at - failed.at >= timedelta(seconds=3590)  # the CA's Retry-After, not 30 s
        h.clock.advance(timedelta(minutes=30))
        assert await h.orchestrator.run_due() == 0
        h.clock.now = failed.retry_at
        await h.settle()
        assert front.refused_orders == 1
    events = await _events(event_log, instance_id)
    assert sum(isinstance(e, hc.OrderPlaced) for e in events) == 1
    assert sum(isinstance(e, hc.CertificateIssued) for e in events) == 1


async def test_a_rate_limited_renewal_waits_and_never_has_two_orders_in_flight(
    h: Hosting, ca: Pebble, event_log: EventLog
) -> None:
    """A renewal refused with `rateLimited` and a Retry-After given as an HTTP-date: no order
    before that time, however often the user asks to renew now and however many
    orchestrators run; then exactly one."""
    async with acme_front(ca, retry_after_s=7200, retry_after_date=True) as front:
        h.orchestrator.ca = CaConfig(front.directory, ca.ca_file)
        instance_id = await _applied(h)
        await h.settle()  # first certificate: the front lets the order through to pebble
        front.limit_orders = 1
        await h.use_cases.renew_now(h.account_id, instance_id, "t")
        await h.orchestrator.run_due()
        (failed,) = [e for e in await _events(event_log, instance_id) if isinstance(e, hc.OrderFailed)]
        assert failed.kind == hc.FailureKind.RATE_LIMITED and failed.renewal
        # Real time passed between the CA's answer and the injected clock's `at`: a minute's slack.
        assert timedelta(hours=2) - timedelta(minutes=1) <= failed.retry_at - failed.at <= timedelta(hours=2)
        twin = Orchestrator(event_log, h.vault, h.orchestrator.ca, h.orchestrator.solver, clock=h.clock)
        for minutes in (1, 30, 110):
            h.clock.now = failed.at + timedelta(minutes=minutes)
            await h.use_cases.renew_now(h.account_id, instance_id, "t")  # an order is on its way: a no-op
            assert await asyncio.gather(h.orchestrator.run_due(), twin.run_due()) == [0, 0]
        (view,) = [
            v for v in await h.use_cases.instances(h.account_id) if v.instance.instance_id == instance_id
        ]
        assert view.next_renewal == failed.retry_at  # what the user sees: the retry, not the schedule
        h.clock.now = failed.retry_at
        await asyncio.gather(h.orchestrator.run_due(), twin.run_due(), h.orchestrator.run_due())
        await h.settle()
        assert front.refused_orders == 1
    events = await _events(event_log, instance_id)
    assert sum(isinstance(e, hc.RenewalRequested) for e in events) == 1  # the later ones were no-ops
    assert sum(isinstance(e, hc.OrderPlaced) for e in events) == 2  # the first certificate's, the renewal's
    assert sum(type(e) is hc.CertificateRenewed for e in events) == 1


async def test_a_ca_unavailable_for_now_is_retried_after_its_retry_after(
    h: Hosting, ca: Pebble, event_log: EventLog
) -> None:
    async with acme_front(ca, limit_orders=1, retry_after_s=900, refusal=("serverInternal", 503)) as front:
        h.orchestrator.ca = CaConfig(front.directory, ca.ca_file)
        instance_id = await _applied(h)
        await h.orchestrator.run_due()
        (failed,) = [e for e in await _events(event_log, instance_id) if isinstance(e, hc.OrderFailed)]
        assert failed.kind == hc.FailureKind.CA_ERROR and failed.detail.startswith("serverInternal")
        assert failed.retry_at - failed.at >= timedelta(seconds=890)  # not the first backoff's 30 s
        h.clock.now = failed.retry_at
        await h.settle()
    events = await _events(event_log, instance_id)
    assert sum(isinstance(e, hc.CertificateIssued) for e in events) == 1


async def test_ari_window_sets_the_renewal_time(h: Hosting, ca: Pebble, event_log: EventLog) -> None:
    window = (h.clock.now + timedelta(days=10), h.clock.now + timedelta(days=12))
    async with acme_front(ca, window=lambda: window) as front:
        h.orchestrator.ca = CaConfig(front.directory, ca.ca_file)
        instance_id = await _applied(h)
        await h.settle()
        assert len(front.ari_queries) == 1
    (issued,) = [e for e in await _events(event_log, instance_id) if isinstance(e, hc.CertificateIssued)]
    assert issued.renew_source == "ari"
    assert window[0] <= issued.renew_at <= window[1]
    (view,) = [v for v in await h.use_cases.instances(h.account_id) if v.instance.instance_id == instance_id]
    assert view.next_renewal == issued.renew_at


async def test_bad_nonces_every_time_are_recorded_as_such(
    pool: AsyncConnectionPool[Any], event_log: EventLog
) -> None:
    with pebble(nonce_reject_percent=100) as rejecting:
        async for h in hosting(pool, event_log, rejecting):
            instance_id = await _applied(h)
            await h.orchestrator.run_due()
    (failed,) = [e for e in await _events(event_log, instance_id) if isinstance(e, hc.OrderFailed)]
    assert failed.kind == hc.FailureKind.BAD_NONCE


async def test_two_orchestrators_place_one_order(h: Hosting, event_log: EventLog) -> None:
    instance_id = await _applied(h)
    o = h.orchestrator
    twin = Orchestrator(event_log, h.vault, o.ca, o.solver, clock=h.clock)
    await asyncio.gather(o.run_due(), twin.run_due(), o.run_due())
    await h.settle()
    events = await _events(event_log, instance_id)
    assert sum(isinstance(e, hc.OrderPlaced) for e in events) == 1
    assert o.orders_placed + twin.orders_placed == 1


async def test_a_moved_ari_window_is_followed_when_the_ca_says_to_ask_again(
    h: Hosting, ca: Pebble, event_log: EventLog
) -> None:
    start = h.clock.now
    window = [start + timedelta(days=30), start + timedelta(days=32)]
    async with acme_front(ca, window=lambda: (window[0], window[1])) as front:
        h.orchestrator.ca = CaConfig(front.directory, ca.ca_file)
        instance_id = await _applied(h)
        await h.settle()
        (issued,) = [e for e in await _events(event_log, instance_id) if isinstance(e, hc.CertificateIssued)]
        assert issued.ari_check_at is not None  # after the front's Retry-After (6 h)
        assert abs(issued.ari_check_at - (start + timedelta(hours=6))) < timedelta(seconds=30)
        # The CA moves the window earlier (say, the certificate is to be revoked).
        window[:] = [start + timedelta(days=2), start + timedelta(days=2, hours=1)]
        h.clock.now = issued.ari_check_at
        await h.settle()
        (moved,) = [e for e in await _events(event_log, instance_id) if isinstance(e, hc.RenewalRescheduled)]
        assert window[0] <= moved.renew_at <= window[1] and moved.renew_source == "ari"
        (view,) = [
            v for v in await h.use_cases.instances(h.account_id) if v.instance.instance_id == instance_id
        ]
        assert view.next_renewal == moved.renew_at
        window[:] = [start + timedelta(days=60), start + timedelta(days=62)]  # the new certificate's
        h.clock.now = moved.renew_at
        await h.settle()
        assert len(front.ari_queries) == 3
    events = await _events(event_log, instance_id)
    assert sum(type(e) is hc.CertificateRenewed for e in events) == 1


async def test_a_window_already_open_for_a_new_certificate_does_not_renew_in_a_loop(
    h: Hosting, ca: Pebble, event_log: EventLog
) -> None:
    start = h.clock.now
    async with acme_front(ca, window=lambda: (start - timedelta(days=2), start - timedelta(days=1))) as front:
        h.orchestrator.ca = CaConfig(front.directory, ca.ca_file)
        instance_id = await _applied(h)
        await h.settle()
    (issued,) = [e for e in await _events(event_log, instance_id) if isinstance(e, hc.CertificateIssued)]
    assert issued.renew_at >= issued.at + timedelta(days=1)  # pebble's five-year certificate: a day at least
