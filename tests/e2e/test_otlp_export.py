"""Traces and metrics reach an OTLP/gRPC receiver from the services running as processes.

One domain serving an expired certificate is added with an email contact; its trace runs from
the AddDomains call (inventory) through the probe (prober) and the verdict (classifier) to the
alert's delivery by SMTP (notifier), across processes, through the event log, NATS and the
notifier's delivery queue. The
metrics the alert rules and the dashboard use arrive too.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from certwatch.platform.config import Settings
from certwatch.v1 import inventory_pb2 as pb
from certwatch.v1 import inventory_pb2_grpc
from tests.support.otlp_receiver import Span, otlp_receiver
from tests.support.pki import TestPKI
from tests.support.process_stack import process_stack
from tests.support.smtp_server import Mailbox, smtp_server
from tests.support.stack import wait_for
from tests.support.tls_server import server_context, tls_server

METRICS = {
    "certwatch.probes": "certwatch-prober",
    "certwatch.probe.duration": "certwatch-prober",
    "certwatch.outbox.published": "",  # whichever service holds the relay's lock
    "certwatch.outbox.lag": "certwatch-classifier",
    "certwatch.projection.lag": "certwatch-classifier",
    "certwatch.probe.phase.duration": "certwatch-prober",
    "certwatch.probe.outcomes": "certwatch-prober",
    "certwatch.verdicts": "certwatch-classifier",
    "certwatch.certificates.expiring": "certwatch-hosting",
    "certwatch.certificate.earliest_expiry": "certwatch-hosting",
    "certwatch.certificate.days_to_expiry": "certwatch-hosting",
    "certwatch.eventlog.appended": "certwatch-inventory",
    "certwatch.vod.requests": "certwatch-vod",
    "certwatch.notifications": "certwatch-notifier",
    "certwatch.worker.backlog": "certwatch-classifier",
}
# What one expired domain, its alert and one unsigned VOD request must have produced, by attribute.
POINTS = {
    "certwatch.probe.phase.duration": [{"phase": "dns"}, {"phase": "connect"}, {"phase": "tls_handshake"}],
    "certwatch.probe.outcomes": [{"outcome": "ok"}],
    "certwatch.verdicts": [{"status": "ABNORMAL", "cause": "EXPIRED"}],
    "certwatch.notifications": [{"channel": "email", "outcome": "sent"}],
    "certwatch.worker.backlog": [
        {"worker": "observationconsumer"},
        {"worker": "scheduler"},
        {"worker": "dispatcher"},
    ],
    "certwatch.certificates.expiring": [
        {"within_days": d, "hosted": h} for d in ("expired", "7", "14", "30") for h in ("true", "false")
    ],
    "certwatch.certificate.earliest_expiry": [{}],
    "certwatch.eventlog.appended": [{"event.type": "DomainAdded"}, {"event.type": "DomainClassified"}],
    "certwatch.vod.requests": [
        {"action": "DescribeVodDomainCertificateInfo", "code": "IncompleteSignature", "status": "400"}
    ],
}


def _trace_of(spans: list[Span]) -> dict[str, list[Span]] | None:
    """The spans of the trace that AddDomains started, by service, once it reached the classifier
    as one tree (every span's parent in it)."""
    add = [s for s in spans if s.service == "certwatch-inventory" and s.name.endswith("/AddDomains")]
    if not add:
        return None
    trace = [s for s in spans if s.trace_id == add[0].trace_id]
    ids = {s.span_id for s in trace}
    if any(s.parent_id and s.parent_id not in ids for s in trace):
        return None  # a parent not exported yet: one tree, or keep waiting
    by_service: dict[str, list[Span]] = {}
    for span in trace:
        by_service.setdefault(span.service, []).append(span)
    if not {"certwatch-prober", "certwatch-classifier", "certwatch-notifier"} <= set(by_service):
        return None
    return (
        by_service if any(s.name == "notifier send email" for s in by_service["certwatch-notifier"]) else None
    )


@pytest.mark.slow
@pytest.mark.timeout(300)
async def test_one_trace_spans_add_probe_verdict_and_alert_and_metrics_arrive(
    settings: Settings, pki: TestPKI, mailbox: Mailbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OTEL_METRIC_EXPORT_INTERVAL", "1000")  # ms; the SDK's default is a minute
    monkeypatch.setenv("OTEL_BSP_SCHEDULE_DELAY", "200")
    now = datetime.now(UTC)
    files = pki.server_files(
        pki.leaf("traced.test", not_before=now - timedelta(days=100), not_after=now - timedelta(days=2))
    )
    with (
        tls_server(server_context(*files)) as port,
        smtp_server(mailbox, pki) as smtp_port,
        otlp_receiver() as (endpoint, received),
    ):
        traced = replace(
            settings, otlp_endpoint=endpoint, resolve_overrides=(f"traced.test:{port}:127.0.0.1",),
            smtp_host="127.0.0.1", smtp_port=smtp_port, smtp_tls="starttls", smtp_user=mailbox.user,
            smtp_password=mailbox.password, smtp_ca_file=pki.ca_file, smtp_from="certwatch@traced.test",
        )  # fmt: skip
        async with process_stack(traced) as stack, stack.channel("inventory") as channel:
            inventory = inventory_pb2_grpc.InventoryStub(channel)
            contact = await inventory.CreateContact(
                pb.ContactInput(name="Ops", email="ops@traced.test"), metadata=stack.metadata, timeout=30
            )
            added = await inventory.AddDomains(
                pb.AddDomainsRequest(domains=f"traced.test:{port}", enable=True, contact_ids=[contact.id]),
                metadata=stack.metadata,
                timeout=30,
            )
            assert added.results[0].added

            async def whole_trace() -> dict[str, list[Span]] | None:
                return _trace_of(received.snapshot()[0])

            trace = await wait_for(whole_trace, timeout=60, every=0.5)
            assert any(s.name == "probe" for s in trace["certwatch-prober"])
            with mailbox.lock:
                assert [str(m["To"]) for m in mailbox.messages] == ["ops@traced.test"]  # the alert, sent once

            async def all_metrics() -> dict[str, set[str]] | None:
                _, metrics = received.snapshot()
                have = all(
                    name in metrics and (not svc or svc in metrics[name]) for name, svc in METRICS.items()
                )
                return metrics if have else None

            # An unsigned request: answered with its error code, and counted by it.
            async with httpx.AsyncClient() as client:
                answer = await client.get(
                    f"http://{stack.vod_endpoint}/",
                    params={"Action": "DescribeVodDomainCertificateInfo", "Version": "2017-03-21"},
                )
            assert answer.status_code == 400 and answer.json()["Code"] == "IncompleteSignature"

            await wait_for(all_metrics, timeout=60, every=0.5)

            # and the one domain by its name, the soonest-expiring of one
            points = {**POINTS, "certwatch.certificate.days_to_expiry": [{"domain": f"traced.test:{port}"}]}
            missing: list[tuple[str, dict[str, str]]] = []

            async def all_points() -> bool:
                missing[:] = [
                    (n, p) for n, wanted in points.items() for p in wanted if p not in received.attributes(n)
                ]
                return not missing

            try:
                await wait_for(all_points, timeout=90, every=0.5)  # the expiry sampler runs every 30 s
            except AssertionError:
                pytest.fail(f"data points never received: {missing}")
