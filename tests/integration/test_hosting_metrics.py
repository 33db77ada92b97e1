"""ACME orders are counted by outcome as they end: issued, or failed with the failure's kind."""

from __future__ import annotations

from tests.integration.test_hosting_failures import _applied
from tests.support.hosting import Hosting, Silent
from tests.support.metric_reader import totals

ISSUED = frozenset({("outcome", "issued"), ("renewal", "false")})
FAILED = frozenset({("outcome", "failed"), ("renewal", "false"), ("kind", "CHALLENGE_FAILED")})


async def test_orders_are_counted_issued_and_failed(h: Hosting) -> None:
    before = totals("certwatch.acme.orders")
    await _applied(h)
    answer = h.orchestrator.solver
    h.orchestrator.solver = Silent()  # pebble's validation gets 404: the order fails
    await h.orchestrator.run_due()
    failed = totals("certwatch.acme.orders")
    assert failed.get(FAILED, 0) == before.get(FAILED, 0) + 1
    assert failed.get(ISSUED, 0) == before.get(ISSUED, 0)
    h.orchestrator.solver = answer
    await _applied(h)  # another instance, answered: issued
    await h.settle()
    after = totals("certwatch.acme.orders")
    assert after.get(ISSUED, 0) == before.get(ISSUED, 0) + 1
