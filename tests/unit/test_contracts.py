"""The contracts read every event as written, today's and older ones, as typed objects."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta
from typing import Any

import msgspec
import orjson
import pytest

from certwatch.classifier.verdicts import decide
from certwatch.contracts import domain as dc
from certwatch.contracts import listing
from certwatch.contracts import probe as pc
from certwatch.contracts import quota as qc
from certwatch.contracts import status as sc
from certwatch.contracts.payload import decode
from certwatch.inventory import domain as d
from certwatch.platform.events import UPCASTERS, NewEvent, RecordedEvent
from certwatch.rules.causes import Cause, Status
from certwatch.rules.classify import Verdict
from certwatch.rules.facts import AtsResult
from certwatch.rules.quota import QuotaState
from tests.support.probe_results import NOW, cert, intermediate, refused, result, served


def _recorded(event: NewEvent | tuple[str, dict[str, Any]], version: int | None = None) -> RecordedEvent:
    """As the log hands an event back: JSON through storage, then upcast."""
    kind, data = (event.type, event.data) if isinstance(event, NewEvent) else event
    if version is None:
        version = event.schema_version if isinstance(event, NewEvent) else d.schema_version(kind)
    stored = orjson.loads(orjson.dumps(data))
    return UPCASTERS.upcast(RecordedEvent(1, uuid.uuid4(), "s-1", 1, kind, version, stored, {}, NOW, 1))


def test_every_event_the_domain_aggregate_appends_decodes() -> None:
    added = d.add(uuid.uuid4(), uuid.uuid4(), "www.example.test", 443, ("c1",), NOW)
    state = d.fold([added])
    assert state is not None
    quota = QuotaState().purchase(5)
    events = [added]
    for step in (
        lambda s: d.enable(s, quota, NOW),
        lambda s: d.conclude_enable_check(s, generation=1, status=Status.SECURE, checked_at=NOW),
        lambda s: d.edit_and_recheck(s, port=8443, contact_ids=(), quota_state=quota, now=NOW),
        lambda s: d.disable(s, NOW),
        lambda s: d.remove(s),
    ):
        made = step(state)
        events += made
        for kind, data in made:
            if kind not in qc.QUOTA_EVENTS:
                state = d.evolve(state, kind, data)
    kinds = set()
    for kind, data in events:
        payload = decode(_recorded((kind, data)))
        assert kind == payload.TYPE and payload.to_data().keys() <= data.keys() | {"contact_ids"}
        kinds.add(kind)
    assert {dc.DOMAIN_ADDED, dc.MONITORING_ENABLED, dc.MONITORING_STARTED, dc.DOMAIN_EDITED,
            dc.RECHECK_REQUESTED, dc.MONITORING_DISABLED, dc.DOMAIN_REMOVED, qc.QUOTA_UNIT_RESERVED,
            qc.QUOTA_UNIT_CONSUMED} <= kinds  # fmt: skip
    started = dc.MonitoringStarted.of(_recorded(next(e for e in events if e[0] == dc.MONITORING_STARTED)))
    assert started.period_start == NOW.date() and isinstance(started.started_at, datetime)


def test_version_1_payloads_are_upcast_then_typed() -> None:
    """Written before reservations: the enable consumed its unit at once."""
    v1 = {"domain_id": "d", "account_id": "a", "host": "h.test", "port": 443, "period_start": "2025-06-01",
          "service_ends_on": "2026-05-31", "generation": 1, "enabled_at": "2025-06-01T00:00:00+00:00"}  # fmt: skip
    enabled = dc.MonitoringEnabled.of(_recorded((dc.MONITORING_ENABLED, v1), version=1))
    assert (enabled.reserved_unit, enabled.awaiting_check, enabled.period_start) == (
        False,
        False,
        date(2025, 6, 1),
    )
    consumed = qc.QuotaUnitConsumed.of(
        _recorded(
            (qc.QUOTA_UNIT_CONSUMED, {"domain_id": "d", "account_id": "a", "period_start": "2025-06-01"}), 1
        )
    )
    assert not consumed.reserved and consumed.generation is None
    assert dc.MonitoringEnabled.VERSION == d.schema_version(dc.MONITORING_ENABLED) == 2


def test_a_verdict_is_read_as_typed_objects_whatever_its_age() -> None:
    expired = cert(days=-3)
    probe = result(served("192.0.2.1", expired, intermediate()), refused("192.0.2.2"))
    observed = pc.ProbeObserved(
        observation_id=str(uuid.uuid4()), domain_id="d", account_id="a", host=probe.host, port=probe.port,
        generation=2, first_check=False, result=pc.ObservedResult.of(probe),
    )  # fmt: skip
    event = decide(pc.ProbeObserved.decode(observed.encode()), probe, None).events[0]
    classified = sc.DomainClassified.of(_recorded(event))
    verdict = classified.verdict
    assert verdict.status is Status.ABNORMAL and verdict.primary_cause is Cause.NETWORK_CONNECTION_FAILURE
    assert Cause.EXPIRED in verdict.causes and verdict.checked_at == NOW
    assert [e.ip for e in classified.endpoints] == ["192.0.2.1", "192.0.2.2"]
    assert classified.endpoints[0].status is Status.ABNORMAL and classified.generation == 2
    # as the first classifier wrote it: no warnings, per-address verdicts nor finding actions
    old = {"domain_id": "d", "account_id": "a", "generation": 1, "first_check": True, "recommended_action": None,
           "verdict": {"host": "h.test", "port": 443, "checked_at": "2026-01-01T00:00:00Z", "status": "SECURE",
                       "primary_cause": None, "causes": [], "findings": [], "brand": "Example CA",
                       "valid_from": "2025-12-01T00:00:00Z", "valid_to": "2026-03-01T00:00:00Z",
                       "days_left": 59, "ats": {"pass": True, "reasons": []}}}  # fmt: skip
    first = sc.DomainClassified.of(_recorded((sc.DOMAIN_CLASSIFIED, old), 1))
    assert first.verdict.ats is not None and first.verdict.ats.passed and first.endpoints == ()
    assert first.period() == (date(2026, 1, 1), date(2026, 1, 1) + timedelta(days=364))


def test_the_stored_json_keeps_its_shape() -> None:
    """Timestamps in UTC with `Z`, the ATS verdict under "pass": what readers of old events expect."""
    at = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    data = sc.DomainClassified(
        domain_id="d", account_id="a", generation=1, first_check=False,
        verdict=Verdict(host="h.test", port=443, checked_at=at, status=Status.SECURE,
                           ats=AtsResult(passed=True)),
    ).to_data()  # fmt: skip
    assert data["verdict"]["checked_at"] == "2026-01-02T03:04:05Z"
    assert data["verdict"]["ats"] == {"pass": True, "reasons": ()} and data["verdict"]["status"] == "SECURE"


def test_a_malformed_payload_is_refused_naming_the_field() -> None:
    bad = {"domain_id": "d", "account_id": "a", "generation": 1, "first_check": False,
           "verdict": {"host": "h", "port": 443, "checked_at": "2026-01-01T00:00:00Z", "status": "FINE"}}  # fmt: skip
    with pytest.raises(msgspec.ValidationError, match=r"\$\.verdict\.status"):
        sc.DomainClassified.of(_recorded((sc.DOMAIN_CLASSIFIED, bad), 1))
    with pytest.raises(ValueError, match="not a DomainClassified"):
        sc.DomainClassified.of(_recorded((dc.DOMAIN_REMOVED, {"domain_id": "d", "account_id": "a"})))


def test_stream_ids_and_subjects_come_from_one_place() -> None:
    assert (
        sc.stream_id("x") == "status-x" and dc.stream_id("x") == "domain-x" and qc.stream_id("x") == "quota-x"
    )
    assert (sc.STREAM.subject, pc.STREAM.subject) == ("cw.events.status.>", "cw.events.probe.>")


def test_one_lifecycle_step_for_every_view_that_lists_domains() -> None:
    edited = dc.DomainEdited(domain_id="d", account_id="a", port=8443)
    change = listing.row_change(edited)
    assert change is not None and change.retry is listing.Retry.IF_PORT_CHANGES
    failed = {"domain_id": "d", "enabled": True, "status": "ENABLE_FAILED", "port": 443, "generation": 1}
    # the retry compares the new port with the row's old one
    assert listing.changed_row(failed, change) == {**failed, "status": "ENABLING", "port": 8443}
    assert listing.changed_row({**failed, "port": 8443}, change) == {**failed, "port": 8443}  # same port
    assert listing.changed_row({**failed, "enabled": False}, change) == {
        **failed,
        "enabled": False,
        "port": 8443,
    }
    assert listing.changed_row(None, change) is None  # a domain the view does not hold
    recheck = listing.row_change(
        dc.RecheckRequested(domain_id="d", account_id="a", host="h", port=443, generation=2)
    )
    assert recheck is not None and recheck.enabled_only and recheck.values == {"port": 443, "generation": 2}
    assert listing.changed_row(failed, recheck) == {**failed, "status": "ENABLING", "generation": 2}
    disabled = {**failed, "enabled": False}
    assert listing.changed_row(disabled, recheck) == disabled  # only while enabled
    removed = listing.row_change(dc.DomainRemoved(domain_id="d", account_id="a"))
    assert removed is not None and removed.removed and listing.changed_row(failed, removed) is None
    assert listing.row_change(dc.MonitoringEnableFailed(domain_id="d", account_id="a", generation=1,
                                                        released_unit=True, failed_at=NOW)) is None  # fmt: skip
