"""The classifier logs one line per verdict change, on both sides of the page-size threshold."""

from __future__ import annotations

import logging
import uuid

import pytest

from certwatch.classifier.status_view import STATUS_VIEW
from certwatch.contracts import status as sc
from certwatch.platform.eventlog import EventLog
from certwatch.platform.events import NewEvent
from certwatch.platform.projection import catch_up
from tests.support.verdicts import classified


def _verdict(domain_id: str, status: str, cause: str | None = None) -> NewEvent:
    return classified(domain_id, uuid.uuid4(), status, cause=cause)


@pytest.mark.parametrize("repeats", [1, 40])  # 3 and 120 events: per-event and whole-page paths
async def test_one_line_per_change(
    event_log: EventLog, caplog: pytest.LogCaptureFixture, repeats: int
) -> None:
    a, b = str(uuid.uuid4()), str(uuid.uuid4())
    for _ in range(repeats):
        await event_log.append(
            sc.stream_id(a), [_verdict(a, "SECURE"), _verdict(a, "SECURE")], expected_version=None
        )
        await event_log.append(
            sc.stream_id(a), [_verdict(a, "ABNORMAL", "NETWORK_CONNECTION_FAILURE")], expected_version=None
        )
    await event_log.append(sc.stream_id(b), [_verdict(b, "SECURE")], expected_version=None)
    with caplog.at_level(logging.INFO, logger="certwatch.classifier.verdicts"):
        await catch_up(event_log, STATUS_VIEW)
        await catch_up(event_log, STATUS_VIEW)  # nothing new: nothing logged
    lines = [r for r in caplog.records if r.name == "certwatch.classifier.verdicts"]
    expected = [f"domain {a} verdict none -> SECURE (no cause)"]
    expected += [f"domain {a} verdict SECURE -> ABNORMAL (NETWORK_CONNECTION_FAILURE)"]
    expected += [f"domain {a} verdict ABNORMAL -> SECURE (no cause)",
                 f"domain {a} verdict SECURE -> ABNORMAL (NETWORK_CONNECTION_FAILURE)"] * (repeats - 1)  # fmt: skip
    expected += [f"domain {b} verdict none -> SECURE (no cause)"]
    assert [r.getMessage() for r in lines] == expected
    assert lines[-1].__dict__["status"] == "SECURE" and lines[-1].__dict__["previous"] is None
