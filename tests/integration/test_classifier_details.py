"""Observation handler + details projection against PostgreSQL: compact chain/ownership
events, the report they build, exactly-once under redelivery, and account scoping."""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import UTC, date, timedelta
from typing import Any

import pytest
from psycopg.types.json import Jsonb
from psycopg_pool import AsyncConnectionPool

from certwatch.classifier.api import ClassifierApi
from certwatch.classifier.details import DETAILS_VIEW
from certwatch.classifier.status_view import STATUS_VIEW
from certwatch.classifier.verdicts import VerdictWriter
from certwatch.contracts import domain as dc
from certwatch.contracts import status as sc
from certwatch.platform import auth, observations
from certwatch.platform.errors import NotFound
from certwatch.platform.eventlog import EventLog
from certwatch.platform.events import NewEvent, RecordedEvent
from certwatch.platform.observation_stream import Incoming
from certwatch.platform.projection import catch_up, rebuild
from certwatch.rules import facts as f
from certwatch.rules.facts import ProbeResult
from certwatch.v1 import classifier_pb2 as pb
from tests.support.observed import observe
from tests.support.probe_results import NOW, cert, intermediate, refused, result, served

LEAF, INT = cert(), intermediate()


class Domain:
    def __init__(self, event_log: EventLog) -> None:
        self.log = event_log
        self.domain_id = str(uuid.uuid4())
        self.account_id = str(uuid.uuid4())
        self.messages: list[Incoming] = []

    async def add_and_enable(self) -> None:
        base = {"domain_id": self.domain_id, "account_id": self.account_id}
        await self.log.append(dc.stream_id(self.domain_id), [
            NewEvent(dc.DOMAIN_ADDED, {**base, "host": "www.example.test", "port": 443,
                                      "contact_ids": ["c-1", "c-2"], "added_at": NOW.isoformat()}),
            NewEvent(dc.MONITORING_ENABLED, {**base, "host": "www.example.test", "port": 443,
                                            "period_start": "2026-05-01",
                                            "service_ends_on": "2027-04-30", "generation": 1,
                                            "enabled_at": NOW.isoformat()}),
        ], expected_version=0)  # fmt: skip

    async def probed(self, probe: ProbeResult, *, first_check: bool = False) -> Incoming:
        message = await observe(self.log, domain_id=self.domain_id, account_id=self.account_id,
                                result=probe, first_check=first_check)  # fmt: skip
        self.messages.append(message)
        await catch_up(self.log, DETAILS_VIEW)
        return message

    async def status_events(self, kind: str) -> list[RecordedEvent]:
        events = await self.log.read_stream(sc.stream_id(self.domain_id))
        return [e for e in events if e.type == kind]

    async def details(self, account_id: str | None = None) -> pb.MonitoringDetails:
        api = ClassifierApi(self.log, clock=lambda: NOW)
        principal = auth.Principal(uuid.UUID(account_id or self.account_id), "k", "user")
        token = auth.bind(principal)
        try:
            return await api.GetMonitoringDetails(pb.StatusRequest(domain_id=self.domain_id), None)
        finally:
            auth.unbind(token)


@pytest.fixture
async def domain(event_log: EventLog) -> Domain:
    found = Domain(event_log)
    await found.add_and_enable()
    return found


async def test_a_chain_is_recorded_once_however_often_it_is_probed(domain: Domain) -> None:
    for minute in range(5):
        await domain.probed(result(served("192.0.2.1", LEAF, INT),
                                   at=NOW + timedelta(minutes=minute)), first_check=minute == 0)  # fmt: skip
    # a stable domain: one verdict (the enable check), five observations
    assert len(await domain.status_events(sc.DOMAIN_CLASSIFIED)) == 1
    async with domain.log.pool.connection() as conn:
        seen = await observations.read(conn, uuid.UUID(domain.domain_id), NOW, NOW + timedelta(hours=1))
    assert [o.observed_at for o in seen] == [NOW + timedelta(minutes=m) for m in range(5)]
    assert {o.status for o in seen} == {"SECURE"} and len({o.chain_id for o in seen}) == 1
    chains = await domain.status_events(sc.CERTIFICATE_CHAIN_OBSERVED)
    assert len(chains) == 1
    assert chains[0].data["serving"] == {"192.0.2.1": [LEAF.sha256, INT.sha256]}
    assert {c["sha256"] for c in chains[0].data["certificates"]} == {LEAF.sha256, INT.sha256}
    assert await domain.status_events(sc.OWNERSHIP_CHANGED) == []


async def test_the_last_check_is_the_last_probe_not_the_last_change(domain: Domain) -> None:
    """A stable domain appends no verdict a probe, so the report's last check is the last
    observation (probe_latest), as the domain list says (it was the enable check's time)."""
    for minute in range(3):
        await domain.probed(result(served("192.0.2.1", LEAF, INT),
                                   at=NOW + timedelta(minutes=minute)), first_check=minute == 0)  # fmt: skip
    report = await domain.details()
    assert report.details.checked_at.ToDatetime(tzinfo=UTC) == NOW + timedelta(minutes=2)


async def test_the_report_has_every_section(domain: Domain) -> None:
    await domain.probed(result(served("192.0.2.1", LEAF, INT), refused("192.0.2.2")),
                        first_check=True)  # fmt: skip
    report = await domain.details()
    assert report.details.host == "www.example.test" and report.details.port == 443
    assert report.details.status == "ENABLE_FAILED"
    assert report.details.service_ends_on == "2027-04-30"
    assert report.details.remaining_service_days == (date(2027, 4, 30) - NOW.date()).days + 1
    assert report.ats.checked and getattr(report.ats, "pass")
    by_ip = {x.ip: x for x in report.ip_content}
    assert by_ip["192.0.2.1"].status == "SECURE" and by_ip["192.0.2.1"].leaf_sha256 == LEAF.sha256
    assert by_ip["192.0.2.2"].status == "ENABLE_FAILED"
    assert by_ip["192.0.2.2"].primary_cause == "CONNECTION_FAILURE"
    [info] = report.certificates
    assert info.certificate.sha256 == LEAF.sha256 and info.ips == ["192.0.2.1"]
    assert info.remaining_days == 90 and info.brand == "Example CA" and info.status == "VALID"
    assert info.certificate.dns_names == ["www.example.test"]
    assert info.certificate.public_key_sha256 == LEAF.public_key_sha256
    [chain] = report.chains
    assert [c.sha256 for c in chain.certificates] == [LEAF.sha256, INT.sha256]
    assert chain.certificates[1].issuer == "CN=Example Root"
    assert list(report.contact_ids) == ["c-1", "c-2"]
    assert list(report.domain_name_updates) == []


async def test_the_report_shows_chain_warnings_and_a_precise_action(domain: Domain) -> None:
    order = f.ChainProblem(f.WRONG_ORDER, "certificates are sent out of issuance order", None)
    missing = f.ChainProblem(f.CHAIN_INCOMPLETE, "missing intermediate", 1)
    await domain.probed(result(replace(served("192.0.2.1", LEAF, INT), warnings=(order,)),
                               replace(served("192.0.2.2", LEAF, INT), problems=(missing,))))  # fmt: skip
    details = (await domain.details()).details
    assert list(details.warnings) == ["192.0.2.1: certificates are sent out of issuance order"]
    assert details.causes == ["CHAIN_VALIDATION_FAILED"]
    assert f"{INT.issuer}, which issued {INT.subject}, is missing" in details.recommended_action


async def test_renewal_and_a_new_owner_are_recorded_with_before_and_after(domain: Domain) -> None:
    await domain.probed(result(served("192.0.2.1", LEAF, INT)))
    renewed = cert(serial=2, days=120)
    await domain.probed(result(served("192.0.2.1", renewed, INT), at=NOW + timedelta(hours=1)))
    new_owner = cert("www.example.test", key="k9", issuer="CN=Other CA")
    await domain.probed(result(served("192.0.2.9", new_owner, INT), at=NOW + timedelta(hours=2)))

    chains = await domain.status_events(sc.CERTIFICATE_CHAIN_OBSERVED)
    assert len(chains) == 3
    # the intermediate is not repeated: only certificates new to the domain carry facts
    assert [c["sha256"] for c in chains[1].data["certificates"]] == [renewed.sha256]
    report = await domain.details()
    newest, oldest = report.domain_name_updates
    assert [c.kind for c in oldest.changes] == ["RENEWAL"]
    assert list(oldest.changes[0].before) == [LEAF.sha256]
    assert list(oldest.changes[0].after) == [renewed.sha256]
    assert [c.kind for c in newest.changes] == ["ADDRESSES", "ISSUER", "PUBLIC_KEY"]
    assert list(newest.changes[0].before) == ["192.0.2.1"]
    assert list(newest.changes[0].after) == ["192.0.2.9"]
    assert newest.observed_at.ToDatetime().replace(tzinfo=NOW.tzinfo) == NOW + timedelta(hours=2)
    assert [c.certificate.sha256 for c in report.certificates] == [new_owner.sha256]


async def test_an_outage_is_neither_a_change_nor_a_new_chain(domain: Domain) -> None:
    await domain.probed(result(served("192.0.2.1", LEAF, INT)))
    await domain.probed(result(refused("192.0.2.1"), at=NOW + timedelta(minutes=1)))
    await domain.probed(result(served("192.0.2.1", LEAF, INT), at=NOW + timedelta(minutes=2)))
    assert len(await domain.status_events(sc.CERTIFICATE_CHAIN_OBSERVED)) == 1
    assert await domain.status_events(sc.OWNERSHIP_CHANGED) == []
    assert [c.sha256 for c in (await domain.details()).chains[0].certificates] == [
        LEAF.sha256, INT.sha256,
    ]  # fmt: skip


async def test_replay_and_rebuild_append_and_change_nothing(domain: Domain) -> None:
    await domain.probed(result(served("192.0.2.1", LEAF, INT)))
    await domain.probed(result(served("192.0.2.1", cert(serial=2), INT), at=NOW + timedelta(1)))
    before = await domain.details()
    head = await domain.log.head()
    # every observation delivered again, together and one by one: no new events
    await VerdictWriter(domain.log)(domain.messages)
    for message in domain.messages:
        await VerdictWriter(domain.log)([message])
    assert await domain.log.head() == head
    assert await rebuild(domain.log, DETAILS_VIEW) > 0
    assert await domain.details() == before


async def test_another_account_gets_not_found(domain: Domain) -> None:
    await domain.probed(result(served("192.0.2.1", LEAF, INT)))
    with pytest.raises(NotFound):
        await domain.details(account_id=str(uuid.uuid4()))


async def test_days_are_counted_when_asked_and_expiry_shows(domain: Domain) -> None:
    short = cert(serial=3, days=20)
    await domain.probed(result(served("192.0.2.1", short, INT)))
    report = await domain.details()
    assert report.certificates[0].status == "ABOUT_TO_EXPIRE"
    assert report.certificates[0].remaining_days == 20
    assert report.details.status == "ABNORMAL"
    assert report.details.primary_cause == "ABOUT_TO_EXPIRE"
    assert report.details.recommended_action
    later = ClassifierApi(domain.log, clock=lambda: NOW + timedelta(days=21))
    token = auth.bind(auth.Principal(uuid.UUID(domain.account_id), "k", "user"))
    try:
        aged = await later.GetMonitoringDetails(pb.StatusRequest(domain_id=domain.domain_id), None)
    finally:
        auth.unbind(token)
    assert aged.certificates[0].status == "EXPIRED"
    assert aged.certificates[0].remaining_days == -1


async def test_history_is_listed_in_log_order_whatever_the_positions(
    domain: Domain, pool: AsyncConnectionPool[Any]
) -> None:
    """Positions are only unique, not ordered across sessions (cached sequence blocks,
    positions reserved ahead): the later of two events may hold the lower position."""
    base = {"domain_id": domain.domain_id, "account_id": domain.account_id}
    high = 8_000_000_000_000_000 + uuid.uuid4().int % 1_000_000_000  # far above the sequence
    for version, (position, status, hours) in enumerate(
        [(high, "SECURE", 1), (high - 500, "ABNORMAL", 2)], 1
    ):
        at = (NOW + timedelta(hours=hours)).isoformat()
        verdict = {"host": "www.example.test", "port": 443, "status": status, "primary_cause": None, "causes": [],
                   "checked_at": at}  # fmt: skip
        change = {"kind": "RENEWAL", "before": [f"v{version - 1}"], "after": [f"v{version}"]}
        async with pool.connection() as conn:  # one transaction each: the second commits later
            for offset, (kind, data) in enumerate([
                (sc.DOMAIN_CLASSIFIED, {**base, "generation": 1, "first_check": False, "verdict": verdict}),
                (sc.OWNERSHIP_CHANGED, {**base, "observed_at": at, "kinds": ["RENEWAL"], "changes": [change]}),
            ]):  # fmt: skip
                await conn.execute(
                    "INSERT INTO events (position, event_id, stream_id, stream_version, event_type,"
                    " schema_version, data) VALUES (%s, %s, %s, %s, %s, 1, %s)",
                    (position + offset, uuid.uuid4(), sc.stream_id(domain.domain_id), 2 * version + offset - 1,
                     kind, Jsonb(data)),
                )  # fmt: skip
    await catch_up(domain.log, STATUS_VIEW)
    await catch_up(domain.log, DETAILS_VIEW)

    api = ClassifierApi(domain.log, clock=lambda: NOW)
    token = auth.bind(auth.Principal(uuid.UUID(domain.account_id), "k", "user"))
    try:
        history = await api.ListStatusHistory(pb.StatusRequest(domain_id=domain.domain_id), None)
    finally:
        auth.unbind(token)
    assert [h.status for h in history.entries] == ["ABNORMAL", "SECURE"]  # newest first
    updates = (await domain.details()).domain_name_updates
    assert [list(u.changes[0].after) for u in updates] == [["v2"], ["v1"]]
