"""The inventory's domain list row (`inventory.views.step`): what a retried enable check shows."""

from __future__ import annotations

import uuid

from certwatch.contracts.payload import Payload, payload_type
from certwatch.inventory import views
from tests.support.domain_events import Domain, Event


def _payloads(events: list[Event]) -> list[Payload]:
    return [payload_type(e.type).from_data(e.data) for _, e in events]


def _row(events: list[Event]) -> views.Row | None:
    row: views.Row | None = None
    for payload in _payloads(events):
        row = views.step(row, payload)
    return row


def test_a_retried_enable_check_shows_no_cause_of_the_failed_one() -> None:
    """After ENABLE_FAILED, an edit to another port or a recheck is an enable check again:
    the row is ENABLING, and the failed check's cause and action are no longer its own (the
    list printed `ENABLING/CONNECTION_FAILURE` until the new verdict came)."""
    d = Domain(str(uuid.uuid4()), str(uuid.uuid4()))
    failed = [d.added(), d.enabled(), d.classified("ENABLE_FAILED", "CONNECTION_FAILURE", first_check=True),
              d.enable_failed()]  # fmt: skip
    before = _row(failed)
    assert (
        before is not None and before["primary_cause"] == "CONNECTION_FAILURE" and before["last_checked_at"]
    )
    for retry in (d.edited(8443), d.recheck(2, enable_check=True)):
        row = _row([*failed, retry])
        assert row is not None and row["status"] == "ENABLING"
        assert (row["primary_cause"], row["causes"], row["recommended_action"]) == (None, [], None)
        assert row["last_checked_at"] is None  # the new check has no time yet: not stale meanwhile
    # the same port is no retry: the failed check's verdict stays
    assert _row([*failed, d.edited(443)]) == before
