"""How `domains list` and `domains show` print a domain."""

from __future__ import annotations

from certwatch.cli import domains
from certwatch.v1 import inventory_pb2 as pb


def test_monitoring_that_could_not_be_enabled_is_not_shown_as_on() -> None:
    """The seed's Enable Failed: 'monitoring could not be enabled'; the domain keeps its
    request (a recheck or an edit retries), but it is not being monitored."""
    failed = pb.Domain(id="d1", host="a.example", port=443, monitoring_enabled=True,
                       status="ENABLE_FAILED", primary_cause="CONNECTION_FAILURE")  # fmt: skip
    on = pb.Domain(id="d2", host="b.example", port=443, monitoring_enabled=True, status="SECURE")
    off = pb.Domain(id="d3", host="c.example", port=443, monitoring_enabled=False, status="NOT_ENABLED")
    assert [domains._row(d)[6] for d in (failed, on, off)] == ["failed", "on", "off"]
    shown = dict(line.split(None, 1) for line in domains._fields(failed).splitlines() if " " in line)
    assert (
        shown["MONITORING"].strip() == "failed"
        and shown["STATUS"].strip() == "ENABLE_FAILED/CONNECTION_FAILURE"
    )
