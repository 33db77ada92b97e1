"""`--json` output: every field of the message, whatever its value."""

from __future__ import annotations

from certwatch.cli import client
from certwatch.v1 import inventory_pb2 as ipb


def test_false_zero_and_empty_fields_are_printed() -> None:
    """protobuf's JSON leaves out fields at their default, so a disabled domain had no
    `monitoring_enabled`, a certificate expiring today no `days_left`, and `quota --json`
    no `reserved_units` while none were reserved: a script reading them failed."""
    today = client.as_json(ipb.Domain(id="d", host="a.example", port=443, status="ABNORMAL",
                                      days_left=0, has_days_left=True))  # fmt: skip
    assert today["days_left"] == 0 and today["monitoring_enabled"] is False and today["causes"] == []
    assert today["stale"] is False and "valid_to" not in today  # an unset timestamp has no value
    never = client.with_unicode_host(ipb.Domain(id="d", host="a.example", status="NOT_ENABLED"))
    assert never["days_left"] is None  # no certificate: no count, rather than 0
    assert client.as_json(ipb.Quota(purchased_units=5))["reserved_units"] == 0
