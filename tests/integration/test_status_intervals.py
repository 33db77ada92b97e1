"""Status history as intervals against PostgreSQL: equal verdicts collapse, the current
interval is open, a rebuild equals the live projection, a log of changes only gives the
same intervals, and the API is scoped by account and paged."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest

from certwatch.classifier import status_intervals as si
from certwatch.classifier.api import ClassifierApi
from certwatch.classifier.details import DETAILS_VIEW
from certwatch.contracts import domain as d
from certwatch.contracts import status as cev
from certwatch.platform import auth
from certwatch.platform.errors import InvalidArgument, NotFound
from certwatch.platform.eventlog import EventLog
from certwatch.platform.events import NewEvent
from certwatch.platform.projection import catch_up, rebuild
from certwatch.v1 import classifier_pb2 as pb
from tests.integration.test_classifier_details import Domain
from tests.support.probe_results import NOW, cert, intermediate, refused, result, served

SECURE = served("192.0.2.1", cert(), intermediate())
SOON = served("192.0.2.1", cert(days=10), intermediate())  # ABOUT_TO_EXPIRE
DOWN = refused("192.0.2.1")  # NETWORK_CONNECTION_FAILURE
MINUTE = timedelta(minutes=1)


async def probed(domain: Domain, *endpoints_at: tuple[object, int]) -> None:
    for endpoint, minute in endpoints_at:
        await domain.probed(result(endpoint, at=NOW + minute * MINUTE))  # type: ignore[arg-type]
    await catch_up(domain.log, si.STATUS_INTERVALS)


async def intervals(domain: Domain, *, account_id: str | None = None, **page: object) -> pb.StatusIntervals:
    api = ClassifierApi(domain.log, clock=lambda: NOW + 60 * MINUTE)
    token = auth.bind(auth.Principal(uuid.UUID(account_id or domain.account_id), "k", "user"))
    try:
        request = pb.StatusIntervalsRequest(domain_id=domain.domain_id, **page)  # type: ignore[arg-type]
        return await api.ListStatusIntervals(request, None)
    finally:
        auth.unbind(token)


def summary(found: pb.StatusIntervals) -> list[tuple[str, list[str], int, int | None, float]]:
    start = NOW.timestamp()
    return [(i.status, list(i.causes), round((i.started_at.seconds - start) / 60),
             round((i.ended_at.seconds - start) / 60) if i.HasField("ended_at") else None, i.duration_seconds)
            for i in found.intervals]  # fmt: skip


@pytest.fixture
async def domain(event_log: EventLog) -> Domain:
    found = Domain(event_log)
    await found.add_and_enable()
    return found


async def test_equal_verdicts_collapse_and_the_current_interval_is_open(domain: Domain) -> None:
    await probed(domain, (SECURE, 0), (SECURE, 5), (DOWN, 10), (DOWN, 15), (SOON, 20), (SOON, 25))
    assert summary(await intervals(domain)) == [  # newest first
        ("ABNORMAL", ["ABOUT_TO_EXPIRE"], 20, None, 40 * 60.0),  # open: its duration runs to now
        ("ABNORMAL", ["NETWORK_CONNECTION_FAILURE"], 10, 20, 600.0),
        ("SECURE", [], 0, 10, 600.0),
    ]
    found = await intervals(domain)
    assert found.intervals[0].open and found.intervals[0].primary_cause == "ABOUT_TO_EXPIRE"
    assert not found.intervals[1].open and found.next_page_token == ""


async def test_a_rebuild_equals_the_live_projection(domain: Domain) -> None:
    await probed(domain, (SECURE, 0), (DOWN, 5), (DOWN, 10), (SECURE, 15))
    live = summary(await intervals(domain))
    assert len(live) == 3
    assert await rebuild(domain.log, si.STATUS_INTERVALS) > 0
    assert summary(await intervals(domain)) == live


async def test_a_log_of_verdict_changes_only_gives_the_same_intervals(domain: Domain) -> None:
    await probed(domain, (SECURE, 0), (SECURE, 5), (DOWN, 10), (DOWN, 15), (DOWN, 20), (SECURE, 25))
    events = [e for e in await domain.log.read_stream(cev.stream_id(domain.domain_id))
              if e.type == cev.DOMAIN_CLASSIFIED]  # fmt: skip
    changes, last = [], None
    for event in events:
        v = event.data["verdict"]
        if (v["status"], v.get("primary_cause"), v["causes"]) != last:
            changes.append(event)
        last = (v["status"], v.get("primary_cause"), v["causes"])
    assert len(events) == 5 and len(changes) == 3  # a stable SECURE is not appended; a failure repeats
    assert si.fold({}, changes).touched == si.fold({}, events).touched


async def test_disabling_ends_the_open_interval_and_removal_forgets_the_history(domain: Domain) -> None:
    await probed(domain, (SECURE, 0))
    base = {"domain_id": domain.domain_id, "account_id": domain.account_id}
    await domain.log.append(d.stream_id(domain.domain_id), [NewEvent(d.MONITORING_DISABLED, base)],
                            expected_version=None)  # fmt: skip
    await catch_up(domain.log, si.STATUS_INTERVALS)
    (closed,) = (await intervals(domain)).intervals
    assert not closed.open and closed.ended_at.seconds > NOW.timestamp()
    await domain.log.append(d.stream_id(domain.domain_id), [NewEvent(d.DOMAIN_REMOVED, base)],
                            expected_version=None)  # fmt: skip
    await catch_up(domain.log, si.STATUS_INTERVALS)
    async with domain.log.pool.connection() as conn:
        cur = await conn.execute("SELECT count(*) FROM classifier_status_intervals")
        assert await cur.fetchone() == (0,)


async def test_another_accounts_domain_is_not_found(domain: Domain) -> None:
    await catch_up(domain.log, DETAILS_VIEW)
    assert list((await intervals(domain)).intervals) == []  # ours, no verdict yet
    await probed(domain, (SECURE, 0))
    with pytest.raises(NotFound):
        await intervals(domain, account_id=str(uuid.uuid4()))
    domain.domain_id = str(uuid.uuid4())
    with pytest.raises(NotFound):
        await intervals(domain)


async def test_pages_walk_every_interval_newest_first(domain: Domain) -> None:
    await probed(domain, (SECURE, 0), (DOWN, 5), (SECURE, 10), (DOWN, 15), (SECURE, 20))
    seen, token = [], ""
    for _ in range(10):
        page = await intervals(domain, page_size=2, page_token=token)
        seen += summary(page)
        token = page.next_page_token
        if not token:
            break
    assert [s[2] for s in seen] == [20, 15, 10, 5, 0]
    with pytest.raises(InvalidArgument, match="page_token"):
        await intervals(domain, page_token="abc")
    with pytest.raises(InvalidArgument, match="page_size"):
        await intervals(domain, page_size=501)
