"""Set-based projections against PostgreSQL: a page applied as one batch leaves exactly the
rows the per-event handlers they replaced leave (tests/support/per_event_views.py), column
for column, whatever the page size: several events of one domain in a page, verdicts of a
stale generation or of a disabled domain, a domain removed and added again, events of a
domain the view never held, and (for the schedule) what a prober wrote meanwhile."""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Callable, Sequence
from datetime import date, timedelta
from typing import Any

from certwatch.classifier.details import DETAILS_VIEW
from certwatch.classifier.status_view import STATUS_VIEW
from certwatch.hosting.observed_expiry import OBSERVED_EXPIRY
from certwatch.inventory.views import DOMAIN_VIEW
from certwatch.platform.eventlog import EventLog
from certwatch.platform.projection import Projection, catch_up
from certwatch.prober.schedule import SCHEDULE
from certwatch.vod.observed_hosts import OBSERVED_HOSTS
from tests.support import per_event_views as reference
from tests.support.domain_events import T0, Domain, Event, append_each

PAGES = (1, 3, 10_000)  # an event at a time, a few, the whole scenario in one page
TABLES = {
    "inventory.domains": {"inventory_domains": "domain_id"},
    "classifier.details": {"classifier_details": "domain_id", "classifier_certificates": "sha256",
                           "classifier_ownership_changes": "position"},
    "classifier.status": {"classifier_status": "domain_id", "classifier_status_history": "position"},
    "prober.schedule": {"probe_schedule": "domain_id"},
    "vod.observed_hosts": {"vod_observed_hosts": "domain_id", "vod_certificates": "sha256"},
    "notifier.incidents": {"notifier_domains": "domain_id", "notifier_certificates": "sha256"},
    "hosting.observed_expiry": {"hosting_observed_expiry": "domain_id"},
}  # fmt: skip
PARENT = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"


class Scenario:
    def __init__(self) -> None:
        account = str(uuid.uuid4())
        self.a, self.b, self.c, self.d, self.e, self.f, self.g, self.h, self.i = (
            Domain(str(uuid.uuid4()), account, host) for host in
            ("a.example.test", "b.example.test", "xn--bcher-kva.example", "d.example.test",
             "e.example.test", "f.example.test", "g.example.test", "h.example.test", "i.example.test")
        )  # fmt: skip

    def before(self) -> list[Event]:
        """Applied and committed before the page compared: rows the page then changes."""
        a, b, c, e, i = self.a, self.b, self.c, self.e, self.i
        return [
            i.added(), i.enabled(), i.classified("ENABLE_FAILED", "INVALID_PORT", first_check=True),
            i.enable_failed(),
            a.added(), a.enabled(traceparent=PARENT),
            b.added(contacts=("c-1", "c-2")), b.enabled(),
            a.classified("ENABLE_FAILED", "CONNECTION_FAILURE", first_check=True), a.enable_failed(),
            b.classified("SECURE", first_check=True), b.started(),
            c.added(contacts=()), e.added(), e.enabled(period_start=date(2026, 3, 1)),
            e.classified("ABNORMAL", "EXPIRED", "CHAIN_VALIDATION_FAILED", days_left=-3),
            b.chain({"192.0.2.1": ("leaf-b1", "int-1")}, "leaf-b1", "int-1"), b.ownership("old", "leaf-b1"),
        ]  # fmt: skip

    def page(self) -> list[Event]:
        a, b, c, d, e, f, g, h, i = self.a, self.b, self.c, self.d, self.e, self.f, self.g, self.h, self.i
        return [
            h.added(), h.enabled(), h.classified("SECURE", first_check=True), h.started(),
            h.recheck(2, enable_check=True), i.edited(443),  # i: the same port, no retry
            h.classified("ABNORMAL", "EXPIRED", minute=5),  # generation 1 after the recheck: ignored
            h.recheck(2),  # not an enable check: the schedule's pending enable check stays one
            a.edited(443),  # the same port: no retry
            b.classified("SECURE", minute=10),
            a.edited(8443),  # another port after a failed enable check: checked again
            b.classified("ABNORMAL", "EXPIRED", minute=11, days_left=0),
            a.classified("SECURE", minute=12),
            c.recheck(1),  # not enabled: the list keeps its row as it is
            a.recheck(2, port=8443, enable_check=True),
            a.classified("ABNORMAL", "CERTIFICATE_MISMATCH", minute=13),  # generation 1: stale
            b.chain({"192.0.2.1": ("leaf-b2", "int-1")}, "leaf-b2", "int-1", minute=12),
            a.classified("ABNORMAL", "ABOUT_TO_EXPIRE", generation=2, first_check=True, minute=14, days_left=9),
            c.edited(444, ('c-"2"', "c,3", "c\\4")),
            b.ownership("leaf-b1", "leaf-b2", minute=12), b.disabled(),
            b.classified("SECURE", minute=15),  # disabled: ignored
            c.enabled(traceparent=PARENT), d.added(), d.enabled(),
            b.enabled(2, period_start=T0.date() - timedelta(days=3), minute=16),
            b.classified("SECURE", minute=17),  # generation 1 after the re-enable: ignored
            c.classified("SECURE", first_check=True, minute=17), c.started(),
            d.classified("ABNORMAL", "NETWORK_CONNECTION_FAILURE", first_check=True, minute=18),
            b.classified("ABNORMAL", "CHAIN_VALIDATION_FAILED", generation=2, minute=18),
            d.chain({"192.0.2.9": ("leaf-d",)}, "leaf-d", "int-1", minute=18),
            d.ownership("x", "leaf-d", minute=18), d.ownership("leaf-d", "y", minute=19),
            e.service_ended(), e.classified("SECURE", minute=20), e.ownership("leaf-e", "leaf-e2", minute=20),
            d.removed(), d.classified("SECURE", minute=21), d.ownership("y", "z", minute=21),
            d.added(port=8443, contacts=("c-9",), minute=22), d.edited(8444),
            f.classified("SECURE", minute=22),
            Domain(f.domain_id, str(uuid.uuid4()), f.host).classified("SECURE", minute=23),  # its account stays
            f.edited(9443), f.chain({"192.0.2.7": ("leaf-f",)}, "leaf-f"),
            g.added(), g.enabled(), g.disabled(), g.recheck(1), g.enabled(2, minute=23),
            g.chain({"192.0.2.3": ("leaf-b2", "int-1"), "192.0.2.4": ("leaf-g",)}, "leaf-g", "leaf-b2"),
            g.classified("SECURE", generation=2, first_check=True, minute=24), g.edited(443),
            a.recheck(3, port=8443), a.classified("ENABLE_FAILED", "INVALID_PORT", generation=3, minute=25),
            i.edited(8443),  # another port after i's failed enable check: ENABLING, its cause cleared
        ]  # fmt: skip


async def rows_after_page(event_log: EventLog, projection: Projection, *, page: int) -> dict[str, list[Any]]:
    """Every row of the projection's tables once it has applied the log in pages of `page`
    events, in a transaction rolled back afterwards (so each variant starts from the same
    rows). A time that is the transaction's own (`now()`) reads as "now"."""
    found: dict[str, list[Any]] = {}
    async with event_log.pool.connection() as conn, conn.transaction(force_rollback=True):
        assert await catch_up(event_log, dataclasses.replace(projection, page=page), conn=conn) > 0
        cur = await conn.execute("SELECT now()")
        row = await cur.fetchone()
        assert row is not None
        for table, key in TABLES[projection.name].items():
            cur = await conn.execute(f"SELECT * FROM {table} ORDER BY {key}".encode())
            names = [c.name for c in cur.description or ()]
            found[table] = [
                {n: "now" if v == row[0] else v for n, v in zip(names, r, strict=True)}
                for r in await cur.fetchall()
            ]
    return found


async def compared(event_log: EventLog, batch: Projection, per_event: Projection, *,
                   between: str = "", more: Callable[[Scenario], Sequence[Event]] = lambda _: ()
                   ) -> dict[str, list[Any]]:  # fmt: skip
    """The scenario's rows from the per-event handlers; asserts that every page size of the
    set-based projection gives the same. `more`: events appended after the page's."""
    scenario = Scenario()
    await append_each(event_log, scenario.before())
    await catch_up(event_log, per_event)
    if between:
        async with event_log.pool.connection() as conn:
            await conn.execute(between.encode())
    await append_each(event_log, [*scenario.page(), *more(scenario)])
    expected = await rows_after_page(event_log, per_event, page=10_000)
    for page in PAGES:
        assert await rows_after_page(event_log, batch, page=page) == expected, f"pages of {page}"
    return expected


async def test_the_domain_list(event_log: EventLog) -> None:
    rows = (await compared(event_log, DOMAIN_VIEW, reference.DOMAINS))["inventory_domains"]
    assert len(rows) == 8  # f was never added, d was added again
    statuses = {r["host"]: (r["status"], r["generation"]) for r in rows}
    assert statuses["a.example.test"] == ("ENABLE_FAILED", 3)
    assert statuses["b.example.test"] == ("ABNORMAL", 2)
    assert statuses["d.example.test"] == ("NOT_ENABLED", 0)
    assert statuses["e.example.test"] == ("SERVICE_ENDED", 1)
    assert statuses["h.example.test"] == ("SECURE", 2) and statuses["i.example.test"] == ("ENABLING", 1)
    [i] = [r for r in rows if r["host"] == "i.example.test"]
    assert (i["primary_cause"], i["causes"], i["recommended_action"]) == (None, [], None)


async def test_the_details_report(event_log: EventLog) -> None:
    found = await compared(event_log, DETAILS_VIEW, reference.DETAILS)
    assert len(found["classifier_details"]) == 8
    assert {r["sha256"] for r in found["classifier_certificates"]} == {"leaf-b1", "leaf-b2", "int-1", "leaf-d",
                                                                "leaf-f", "leaf-g"}  # fmt: skip
    assert len(found["classifier_ownership_changes"]) == 4  # d's two before its removal are gone


async def test_the_status_view(event_log: EventLog) -> None:
    found = await compared(event_log, STATUS_VIEW, reference.STATUS)
    assert len(found["classifier_status"]) == 9  # every domain classified, f and a removed d too
    assert len(found["classifier_status_history"]) == 22  # every verdict


async def test_the_probe_schedule_keeps_what_probers_wrote(event_log: EventLog) -> None:
    prober = (
        "UPDATE probe_schedule SET claimed_by = 'prober-1', last_probed = now() - interval '1 minute',"
        " reported_chains = '{\"leaf,int\",other}', next_due = now() + interval '1 hour'"
    )
    rows = (await compared(event_log, SCHEDULE, reference.SCHEDULE_PER_EVENT, between=prober))[
        "probe_schedule"
    ]
    assert sorted(r["host"] for r in rows) == ["a.example.test", "b.example.test", "g.example.test", "h.example.test",
                                               "i.example.test", "xn--bcher-kva.example"]  # d removed, e ended  # fmt: skip
    [a] = [r for r in rows if r["host"] == "a.example.test"]
    assert a["reported_chains"] == ["leaf,int", "other"] and a["last_probed"] is not None  # the prober's
    assert (
        a["claimed_by"] is None and a["next_due"] == "now" and a["paused"]
    )  # the recheck's, then the verdict's


async def test_what_each_host_serves_for_the_vod_api(event_log: EventLog) -> None:
    found = await compared(event_log, OBSERVED_HOSTS, reference.OBSERVED_HOSTS)
    hosts = {r["host"]: r for r in found["vod_observed_hosts"]}
    assert "f.example.test" not in hosts and "d.example.test" in hosts  # never added; added again
    assert any(r["serving"] for r in hosts.values())  # chains were applied, not only additions
    assert {r["sha256"] for r in found["vod_certificates"]} >= {"leaf-b1", "leaf-b2", "int-1"}


async def test_the_notifiers_incident_memory(event_log: EventLog) -> None:
    paged, per_event = reference.incidents(event_log)
    settings = (  # b's own threshold, over the default's 30 days (kept across rebuilds: not the projection's)
        "INSERT INTO notifier_domain_settings (domain_id, account_id, rules) SELECT domain_id, account_id,"
        """ '{"expiry_threshold_days": 90}' FROM notifier_domains WHERE host = 'b.example.test'"""
    )
    j, k = (
        Domain(str(uuid.uuid4()), str(uuid.uuid4()), host) for host in ("j.example.test", "k.example.test")
    )
    never_classified = [j.added(), j.started(), j.edited(8443, ("c-5",)), k.added(), k.disabled()]
    found = await compared(event_log, paged, per_event, between=settings,
                           more=lambda s: [*never_classified, s.e.removed(), s.e.added()])  # fmt: skip
    domains = {r["host"]: r for r in found["notifier_domains"]}
    assert len(domains) == 11  # f and d have rows from their verdicts alone, d added again after
    assert (
        domains["j.example.test"]["memory"] == {} and domains["j.example.test"]["service_ends_on"] is not None
    )
    assert domains["k.example.test"]["memory"] == {"active": [], "incident": 0, "network_failures": 0}
    assert domains["e.example.test"]["classified"] is None  # removed after its verdict, added again
    assert domains["d.example.test"]["port"] == 8444 and domains["d.example.test"]["contact_ids"] == ["c-9"]
    assert "about_to_expire" in domains["b.example.test"]["memory"]["active"]  # 60 days left, within 90
    assert "about_to_expire" not in domains["h.example.test"]["memory"]["active"]  # not within 30
    issuers = {r["sha256"]: r["issuer"] for r in found["notifier_certificates"]}
    assert issuers["int-1"] == "CN=CA 3" and issuers["leaf-b2"] == "CN=CA 12"  # the first facts seen stay


async def test_the_expiry_hosting_sees_of_each_endpoint(event_log: EventLog) -> None:
    rows = {r["host"]: r for r in (await compared(event_log, OBSERVED_EXPIRY, reference.OBSERVED_EXPIRY))[
        "hosting_observed_expiry"]}  # fmt: skip
    assert len(rows) == 9  # every domain classified, f and a removed d too
    f = rows[
        "f.example.test"
    ]  # classified in another account afterwards: the last verdict, its first account
    assert f["checked_at"] == Domain.at(23) and f["account_id"] == rows["a.example.test"]["account_id"]
