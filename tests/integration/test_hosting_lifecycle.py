"""Three years of hosting against pebble with 100-day certificates and an injected clock.

The first instance is applied for by hand; every renewal inside a year, the activation of
the second and third instances with the first application, and the end-of-hosting event
happen with no user action. pebble rejects 5% of nonces (its default) throughout.
"""

from __future__ import annotations

import itertools
import uuid
from datetime import timedelta
from typing import Any

import pytest

from certwatch.contracts import hosting as hc
from certwatch.contracts.payload import decode
from certwatch.hosting import lifecycle
from certwatch.platform.eventlog import EventLog
from tests.support.hosting import Hosting, verify_chain
from tests.support.pebble import Pebble

LIFETIME = timedelta(days=100)
MAX_ROUNDS = 80
PEBBLE = {"validity_s": int(LIFETIME.total_seconds())}  # nonces: pebble's default, 5% rejected


async def _next_due(h: Hosting) -> Any:
    async with h.orchestrator.pool.connection() as conn:
        cur = await conn.execute(
            "SELECT min(due_at) FROM hosting_instances WHERE account_id = %s", (h.account_id,)
        )
        row = await cur.fetchone()
    assert row is not None
    return row[0]


@pytest.mark.slow
async def test_three_years_renew_activate_and_end_without_user_action(
    h: Hosting, ca: Pebble, event_log: EventLog
) -> None:
    _sub, instances = await h.use_cases.subscribe(h.account_id, 3, "test")
    ids = [i.instance_id for i in instances]
    names = [f"h{uuid.uuid4().hex[:10]}.example.com"]
    start = h.clock.now
    await h.use_cases.apply(
        h.account_id, ids[0], names, "rsa2048", "Example Co", "ops@example.com", "http-01", "t"
    )
    await h.settle()
    for _ in range(MAX_ROUNDS):
        due = await _next_due(h)
        if due is None:
            break
        h.clock.now = max(h.clock.now, due)
        await h.settle()
    else:
        raise AssertionError(f"hosting still had work after {MAX_ROUNDS} rounds")

    streams = await event_log.read_streams([hc.stream_id(i) for i in ids])
    per = {i: [decode(e) for e in streams[hc.stream_id(i)]] for i in ids}
    final = {i: lifecycle.fold(per[i]) for i in ids}
    assert [final[i].state for i in ids] == [hc.InstanceState.ENDED] * 3
    for year, i in enumerate(ids, start=1):
        issued = [e for e in per[i] if isinstance(e, hc.CertificateIssued)]
        first, renewals = issued[0], issued[1:]
        assert type(first) is hc.CertificateIssued and all(type(r) is hc.CertificateRenewed for r in renewals)
        # Year of 365 days, renewal every 2/3 of 100 days: the first certificate and 5 renewals.
        assert len(issued) == 6, (year, [e.at - start for e in issued])
        year_end = final[i].year_ends_at
        assert year_end is not None
        assert all(e.at < year_end for e in issued)
        assert all(e.renew_source == "lifetime" for e in issued)
        for e in issued:
            assert e.certificate.names == names
            verify_chain(e.certificate.cert_pem, e.certificate.chain_pem, ca.root_pem)
        submitted = [e for e in per[i] if isinstance(e, hc.ApplicationSubmitted)]
        assert len(submitted) == 1 and submitted[0].automatic == (year > 1)
        assert submitted[0].application.key_type == hc.KeyType.RSA2048
        placed = [e for e in per[i] if isinstance(e, hc.OrderPlaced)]
        assert len(placed) == len(issued) + sum(
            1 for e in per[i] if isinstance(e, hc.OrderFailed) and e.order_abandoned and e.order_url
        )
    # Each later year starts when the one before is over, at its next renewal time.
    for before, after in itertools.pairwise(ids):
        ended = next(e for e in per[before] if isinstance(e, hc.InstanceStateChanged) and e.state == "ENDED")
        activated = next(
            e for e in per[after] if isinstance(e, hc.InstanceStateChanged) and e.state == "APPLYING"
        )
        assert activated.at == ended.at and activated.reason.startswith("year")
    (ending,) = [e for e in per[ids[2]] if isinstance(e, hc.HostingEnding)]
    last = [e for e in per[ids[2]] if isinstance(e, hc.CertificateIssued)][-1]
    assert ending.certificate_id == last.certificate_id and ending.last_expiry == last.certificate.not_after
    # Announced a third of the last certificate's lifetime ahead of its expiry (on this clock).
    assert ending.at - last.at <= LIFETIME * 2 / 3 + timedelta(days=1)
    assert all(not any(isinstance(e, hc.HostingEnding) for e in per[i]) for i in ids[:2])
