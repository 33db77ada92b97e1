"""Trace context goes on past the notifier: the send of an alert is a span of the trace of the
verdict event that raised it, through the delivery table (a send can come long after the decision)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime

import httpx
import pytest
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from certwatch.contracts import contacts as cc
from certwatch.contracts import domain as dc
from certwatch.notifier import incidents
from certwatch.notifier.dispatcher import Dispatcher
from certwatch.platform import telemetry
from certwatch.platform.config import Settings
from certwatch.platform.eventlog import EventLog
from certwatch.platform.projection import catch_up
from certwatch.platform.shredding import Vault, new_master_key, parse_master_key
from tests.support.robot_servers import RobotState
from tests.support.spans import recorded_spans
from tests.support.verdicts import classified

EXPORTER = InMemorySpanExporter()
SETTINGS = Settings(allow_custom_webhooks=True)


@pytest.fixture(scope="module", autouse=True)
def _telemetry() -> Iterator[None]:
    with recorded_spans(EXPORTER):
        yield


async def test_an_alert_is_sent_in_the_trace_of_its_verdict(
    event_log: EventLog, robots: RobotState, robot_url: str, http: httpx.AsyncClient
) -> None:
    robots.webhook_secret = "whsecret-0123456789"
    vault = Vault(parse_master_key(new_master_key()))
    account_id, domain_id, contact_id = str(uuid.uuid4()), str(uuid.uuid4()), str(uuid.uuid4())
    async with event_log.pool.connection() as conn:
        sealed = await vault.seal(conn, cc.sealed_subject(contact_id), {
            "name": "ops", "webhook_url": f"{robot_url}/hook", "webhook_secret": robots.webhook_secret})  # fmt: skip
    created = cc.ContactCreated(contact_id=contact_id, account_id=account_id, sealed=sealed, has_secret=True)
    await event_log.append(cc.stream_id(contact_id), [created.new_event()], expected_version=0)
    added = dc.DomainAdded(domain_id=domain_id, account_id=account_id, host="traced.example.test", port=443,
                           contact_ids=(contact_id,), added_at=datetime.now(UTC))  # fmt: skip
    await event_log.append(dc.stream_id(domain_id), [added.new_event()], expected_version=0)

    with telemetry.tracer().start_as_current_span("classifier.verdict") as verdict:
        event = classified(domain_id, account_id, "ABNORMAL", cause="EXPIRED", checked_at=datetime.now(UTC))
        traced = event._replace(metadata={"traceparent": telemetry.current_traceparent()})
    await event_log.append(f"status-{domain_id}", [traced], expected_version=None)
    # Applied in a page with other events (a catch-up), so no span of the projection's own is the parent.
    await catch_up(event_log, incidents.projection(event_log, SETTINGS, vault))
    assert await Dispatcher(event_log, SETTINGS, vault).run_once(http) == 1
    assert len(robots.of("webhook")) == 1

    [send] = [s for s in EXPORTER.get_finished_spans() if s.name == "notifier send webhook"]
    assert send.context.trace_id == verdict.get_span_context().trace_id
    assert send.parent is not None and send.parent.span_id == verdict.get_span_context().span_id
    assert send.attributes is not None
    assert (send.attributes["certwatch.event"], send.attributes["certwatch.outcome"]) == (
        "expired",
        "Delivered",
    )
