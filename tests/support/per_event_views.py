"""The projections as they were before they applied pages set-based: one SQL statement (or
more) per event. Kept as the reference the set-based ones must match row for row
(tests/integration/test_page_projections.py) and be measured against (bench/projection_apply.py).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from datetime import UTC, datetime

from psycopg.types.json import Jsonb

from certwatch.classifier.details import DETAILS_VIEW
from certwatch.classifier.status_view import STATUS_VIEW
from certwatch.contracts import domain as dc
from certwatch.contracts import status as sc
from certwatch.contracts.listing import Retry, RowChange, row_change
from certwatch.contracts.payload import decode
from certwatch.contracts.status import DomainClassified
from certwatch.hosting.observed_expiry import OBSERVED_EXPIRY as HOSTING_OBSERVED_EXPIRY
from certwatch.inventory.views import DOMAIN_VIEW
from certwatch.notifier import incidents as notifier_incidents
from certwatch.notifier.rules import Memory, Verdict, on_verdict
from certwatch.platform.config import Settings
from certwatch.platform.eventlog import Conn, EventLog
from certwatch.platform.events import RecordedEvent
from certwatch.platform.projection import Handler, Projection
from certwatch.prober.schedule import SCHEDULE
from certwatch.rules.causes import Status
from certwatch.rules.targets import unicode_hostname
from certwatch.vod.observed_hosts import OBSERVED_HOSTS as VOD_OBSERVED_HOSTS

_RETRY = {
    Retry.ALWAYS: "status = CASE WHEN status = 'ENABLE_FAILED' THEN 'ENABLING' ELSE status END",
    Retry.IF_PORT_CHANGES: "status = CASE WHEN enabled AND status = 'ENABLE_FAILED' AND port <> %s"
    " THEN 'ENABLING' ELSE status END",
}


def update_sql(
    table: str, change: RowChange, *, extra: str = "", extra_params: tuple[object, ...] = ()
) -> tuple[str, tuple[object, ...]]:
    """The UPDATE of `table` for a change that keeps the row; `extra` adds assignments of the
    view's own columns (`, name = %s ...`, parameters in `extra_params`)."""
    assert not change.removed, "a removal is each view's own DELETE"
    assignments, params = [], []
    if change.retry is not Retry.NO:  # SET reads the old row: `port` here is the port before
        assignments.append(_RETRY[change.retry])
        if change.retry is Retry.IF_PORT_CHANGES:
            params.append(change.values["port"])
    for column, value in change.values.items():
        assignments.append(f"{column} = %s")
        params.append(value)
    where = " AND enabled" if change.enabled_only else ""
    sql = f"UPDATE {table} SET {', '.join(assignments)}{extra} WHERE domain_id = %s{where}"
    return sql, (*params, *extra_params, change.domain_id)


async def _domains(conn: Conn, event: RecordedEvent) -> None:
    payload = decode(event)
    change = row_change(payload)
    if isinstance(payload, dc.DomainAdded):
        await conn.execute(
            "INSERT INTO inventory_domains (domain_id, account_id, host, host_unicode, port, contact_ids,"
            " added_at) VALUES (%s, %s, %s, %s, %s, %s, %s) ON CONFLICT (domain_id) DO NOTHING",
            (payload.domain_id, payload.account_id, payload.host, unicode_hostname(payload.host), payload.port,
             list(payload.contact_ids), payload.added_at),
        )  # fmt: skip
    elif isinstance(payload, DomainClassified):
        verdict = payload.verdict
        # Only a verdict for the current enable generation of an enabled domain counts.
        await conn.execute(
            "UPDATE inventory_domains SET status = %s, primary_cause = %s, causes = %s,"
            " recommended_action = %s, brand = %s, valid_from = %s, valid_to = %s,"
            " days_left = %s, last_checked_at = %s, period_start = coalesce(period_start, %s),"
            " service_ends_on = coalesce(service_ends_on, %s)"
            " WHERE domain_id = %s AND enabled AND generation = %s",
            (verdict.status, verdict.primary_cause, list(verdict.causes), payload.recommended_action,
             verdict.brand, verdict.valid_from, verdict.valid_to, verdict.days_left,
             verdict.checked_at, *payload.period(), payload.domain_id, payload.generation),
        )  # fmt: skip
    elif change is not None and change.removed:
        await conn.execute("DELETE FROM inventory_domains WHERE domain_id = %s", (change.domain_id,))
    elif change is not None:
        # The first enable dates the domain.
        extra, params = (
            (_ENABLED, (payload.enabled_at,)) if isinstance(payload, dc.MonitoringEnabled) else ("", ())
        )
        await conn.execute(*update_sql("inventory_domains", change, extra=extra, extra_params=params))
        await conn.execute(  # an enable check (an enable, or a retry) clears the verdict before it
            "UPDATE inventory_domains SET primary_cause = NULL, causes = '{}', recommended_action = NULL,"
            " last_checked_at = NULL WHERE domain_id = %s AND status = 'ENABLING'", (change.domain_id,),
        )  # fmt: skip


_ENABLED = ", first_enabled_at = coalesce(first_enabled_at, %s)"


async def _details(conn: Conn, event: RecordedEvent) -> None:
    """Certificates, ownership changes and the details row, a statement (or more) an event."""
    match decode(event):
        case sc.DomainClassified() as e:
            sql = (
                "UPDATE classifier_details SET status = %s, classified = %s,"
                " period_start = coalesce(period_start, %s), service_ends_on = coalesce(service_ends_on, %s)"
                " WHERE domain_id = %s AND enabled AND generation = %s"
            )
            await conn.execute(
                sql, (e.verdict.status, Jsonb(event.data), *e.period(), e.domain_id, e.generation)
            )
        case sc.CertificateChainObserved() as e:
            for cert in e.certificates:
                await conn.execute(
                    "INSERT INTO classifier_certificates (sha256, facts) VALUES (%s, %s)"
                    " ON CONFLICT (sha256) DO NOTHING",
                    (cert["sha256"], Jsonb(cert)),
                )
            await conn.execute(
                "UPDATE classifier_details SET serving = %s, chain_observed_at = %s WHERE domain_id = %s",
                (Jsonb(event.data["serving"]), e.observed_at, e.domain_id),
            )
        case sc.OwnershipChanged() as e:
            await conn.execute(
                "INSERT INTO classifier_ownership_changes (position, transaction_id, domain_id,"
                " account_id, observed_at, kinds, changes) VALUES (%s, %s::text::xid8, %s, %s, %s, %s, %s)",
                (event.position, str(event.transaction_id), e.domain_id, e.account_id, e.observed_at,
                 list(e.kinds), Jsonb(event.data["changes"])),
            )  # fmt: skip
        case dc.DomainAdded() as e:
            await conn.execute(
                "INSERT INTO classifier_details (domain_id, account_id, host, port, contact_ids)"
                " VALUES (%s, %s, %s, %s, %s) ON CONFLICT (domain_id) DO NOTHING",
                (e.domain_id, e.account_id, e.host, e.port, list(e.contact_ids)),
            )
        case payload if (change := row_change(payload)) is not None:
            if change.removed:
                for sql in ("DELETE FROM classifier_details WHERE domain_id = %s",
                            "DELETE FROM classifier_ownership_changes WHERE domain_id = %s"):  # fmt: skip
                    await conn.execute(sql, (change.domain_id,))
            else:
                await conn.execute(*update_sql("classifier_details", change))


async def _apply_status(conn: Conn, event: RecordedEvent, classified: sc.DomainClassified) -> None:
    verdict = classified.verdict
    row = (classified.domain_id, classified.account_id, verdict.status, verdict.primary_cause,
           list(verdict.causes), verdict.checked_at)  # fmt: skip
    await conn.execute(
        "INSERT INTO classifier_status (domain_id, account_id, status, primary_cause, causes,"
        " checked_at, generation, verdict) VALUES (%s, %s, %s, %s, %s, %s, %s, %s)"
        " ON CONFLICT (domain_id) DO UPDATE SET status = excluded.status,"
        " primary_cause = excluded.primary_cause, causes = excluded.causes,"
        " checked_at = excluded.checked_at, generation = excluded.generation,"
        " verdict = excluded.verdict",
        (*row, classified.generation, Jsonb(event.data["verdict"])),
    )
    await conn.execute(
        "INSERT INTO classifier_status_history (domain_id, account_id, status, primary_cause,"
        " causes, checked_at, position, transaction_id, verdict)"
        " VALUES (%s, %s, %s, %s, %s, %s, %s, %s::text::xid8, %s)",
        (*row, event.position, str(event.transaction_id), Jsonb(event.data["verdict"])),
    )


async def _statuses(conn: Conn, events: Sequence[RecordedEvent]) -> None:
    for event in events:
        await _apply_status(conn, event, sc.DomainClassified.of(event))


async def _schedule(conn: Conn, event: RecordedEvent) -> None:
    payload = decode(event)
    match payload:
        case dc.MonitoringEnabled() as e:
            await conn.execute(
                "INSERT INTO probe_schedule (domain_id, account_id, host, port, generation,"
                " traceparent, first_check, paused, next_due)"
                " VALUES (%s, %s, %s, %s, %s, %s, true, false, now())"
                " ON CONFLICT (domain_id) DO UPDATE SET host = excluded.host, port = excluded.port,"
                " generation = excluded.generation, traceparent = excluded.traceparent,"
                " first_check = true, paused = false, next_due = now(), claimed_by = NULL,"
                " reported_chains = '{}'",
                (e.domain_id, e.account_id, e.host, e.port, e.generation, event.metadata.get("traceparent")),
            )
        case dc.DomainEdited() as e:
            # A new port is checked at once; after an enable failure this is the seed's
            # "edit and retry".
            await conn.execute(
                "UPDATE probe_schedule SET port = %s, next_due = now(),"
                " first_check = first_check OR paused, paused = false WHERE domain_id = %s",
                (e.port, e.domain_id),
            )
        case dc.RecheckRequested() as e:
            # Due now. An enable check again comes with a new generation: a probe of the old one
            # still in flight is dropped. A row already due as an enable check, or paused after a
            # failed one (domains enabled before enable checks had events of their own), stays one.
            await conn.execute(
                "UPDATE probe_schedule SET port = %s, generation = %s,"
                " first_check = first_check OR paused OR %s, paused = false, next_due = now(),"
                " claimed_by = NULL WHERE domain_id = %s",
                (e.port, e.generation, e.enable_check, e.domain_id),
            )
        case dc.MonitoringDisabled() | dc.DomainRemoved() | dc.MonitoringServiceEnded() as e:
            await conn.execute("DELETE FROM probe_schedule WHERE domain_id = %s", (e.domain_id,))
        case sc.DomainClassified() as e:
            failed = e.verdict.status is Status.ENABLE_FAILED
            await conn.execute(
                "UPDATE probe_schedule SET first_check = %s, paused = %s"
                " WHERE domain_id = %s AND generation = %s",
                (failed, failed, e.domain_id, e.generation),
            )


async def _observed_hosts(conn: Conn, event: RecordedEvent) -> None:
    match decode(event):
        case dc.DomainAdded() as e:
            await conn.execute(
                "INSERT INTO vod_observed_hosts (domain_id, account_id, host, port) VALUES (%s, %s, %s, %s)"
                " ON CONFLICT (domain_id) DO NOTHING",
                (e.domain_id, e.account_id, e.host, e.port),
            )
        case dc.DomainEdited() as e:
            await conn.execute(
                "UPDATE vod_observed_hosts SET host = coalesce(%s, host), port = %s WHERE domain_id = %s",
                (e.host, e.port, e.domain_id),
            )
        case dc.DomainRemoved() as e:
            await conn.execute("DELETE FROM vod_observed_hosts WHERE domain_id = %s", (e.domain_id,))
        case sc.CertificateChainObserved() as e:
            for cert in e.certificates:
                await conn.execute(
                    "INSERT INTO vod_certificates (sha256, facts) VALUES (%s, %s) ON CONFLICT (sha256) DO NOTHING",
                    (cert["sha256"], Jsonb(cert)),
                )
            await conn.execute(
                "UPDATE vod_observed_hosts SET serving = %s, observed_at = %s WHERE domain_id = %s",
                (Jsonb(event.data["serving"]), e.observed_at, e.domain_id),
            )


async def _incidents(conn: Conn, event: RecordedEvent) -> None:
    """The notifier's rows as its projection wrote them event by event (alerts aside: the
    reference runs with a clock that finds every event too old to page anyone)."""
    match decode(event):
        case dc.DomainAdded() as e:
            await conn.execute(
                "INSERT INTO notifier_domains (domain_id, account_id, host, port, contact_ids)"
                " VALUES (%s, %s, %s, %s, %s) ON CONFLICT (domain_id) DO UPDATE SET host = excluded.host,"
                " port = excluded.port, contact_ids = excluded.contact_ids",
                (e.domain_id, e.account_id, e.host, e.port, list(e.contact_ids)),
            )  # fmt: skip
        case dc.DomainEdited() as e:
            await conn.execute(
                "UPDATE notifier_domains SET host = coalesce(%s, host), port = %s,"
                " contact_ids = coalesce(%s, contact_ids) WHERE domain_id = %s",
                (e.host, e.port, None if e.contact_ids is None else list(e.contact_ids), e.domain_id),
            )
        case dc.DomainRemoved() as e:
            await conn.execute("DELETE FROM notifier_domains WHERE domain_id = %s", (e.domain_id,))
        case dc.MonitoringDisabled() | dc.MonitoringServiceEnded() as e:
            cur = await conn.execute(
                "SELECT memory FROM notifier_domains WHERE domain_id = %s", (e.domain_id,)
            )
            row = await cur.fetchone()
            if row is not None:
                memory = Memory(incident=Memory.from_dict(row[0]).incident)
                await conn.execute(
                    "UPDATE notifier_domains SET memory = %s, problem = NULL, classified = NULL"
                    " WHERE domain_id = %s",
                    (Jsonb(memory.to_dict()), e.domain_id),
                )
        case dc.MonitoringStarted() as e:
            await conn.execute(
                "UPDATE notifier_domains SET service_ends_on = %s WHERE domain_id = %s",
                (e.service_ends_on, e.domain_id),
            )
        case sc.DomainClassified() as e:
            await conn.execute(
                "INSERT INTO notifier_domains (domain_id, account_id, host, port) VALUES (%s, %s, %s, %s)"
                " ON CONFLICT (domain_id) DO NOTHING",
                (e.domain_id, e.account_id, e.verdict.host, e.verdict.port),
            )
            cur = await conn.execute(
                "SELECT d.account_id::text, memory, coalesce(s.rules, '{}') FROM notifier_domains d"
                " LEFT JOIN notifier_domain_settings s USING (domain_id) WHERE d.domain_id = %s",
                (e.domain_id,),
            )
            row = await cur.fetchone()
            assert row is not None
            account, _ = await notifier_incidents.account_rules(conn, row[0])
            v = e.verdict
            seen = Verdict(v.status.value, frozenset(c.value for c in v.causes), v.days_left)
            memory, fired = on_verdict(Memory.from_dict(row[1]), seen, notifier_incidents.effective_rules(account, row[2]),
                                       streak=e.streak)  # fmt: skip
            problem = notifier_incidents._problem(v, memory, v.checked_at)
            await conn.execute(
                "UPDATE notifier_domains SET memory = %s, problem = %s, classified = %s, checked_at = %s,"
                " alerted_in = CASE WHEN %s THEN %s ELSE alerted_in END WHERE domain_id = %s",
                (Jsonb(memory.to_dict()), None if problem is None else Jsonb(problem), Jsonb(e.to_data()),
                 v.checked_at, bool(fired), str(event.transaction_id), e.domain_id),
            )  # fmt: skip
        case sc.CertificateChainObserved() as e:
            for f in e.certificates:
                await conn.execute(
                    "INSERT INTO notifier_certificates (sha256, subject, issuer, not_after)"
                    " VALUES (%s, %s, %s, %s) ON CONFLICT (sha256) DO NOTHING",
                    (f["sha256"], f["subject"], f["issuer"], f["not_after"]),
                )


async def _observed_expiry(conn: Conn, event: RecordedEvent) -> None:
    e = sc.DomainClassified.of(event)
    verdict = e.verdict
    await conn.execute(
        "INSERT INTO hosting_observed_expiry (domain_id, account_id, host, port, valid_to, brand,"
        " checked_at) VALUES (%s, %s, %s, %s, %s, %s, %s) ON CONFLICT (domain_id) DO UPDATE SET"
        " valid_to = excluded.valid_to, brand = excluded.brand, checked_at = excluded.checked_at,"
        " host = excluded.host, port = excluded.port",
        (e.domain_id, e.account_id, verdict.host, verdict.port,
         verdict.valid_to, verdict.brand, verdict.checked_at),
    )  # fmt: skip


def _per_event(projection: Projection, handle: Handler) -> Projection:
    return dataclasses.replace(projection, handle=handle, handle_batch=None)


DOMAINS = _per_event(DOMAIN_VIEW, _domains)
DETAILS = _per_event(DETAILS_VIEW, _details)
STATUS = dataclasses.replace(STATUS_VIEW, handle_batch=_statuses)
SCHEDULE_PER_EVENT = _per_event(SCHEDULE, _schedule)
OBSERVED_HOSTS = _per_event(VOD_OBSERVED_HOSTS, _observed_hosts)
OBSERVED_EXPIRY = _per_event(HOSTING_OBSERVED_EXPIRY, _observed_expiry)


def incidents(event_log: EventLog) -> tuple[Projection, Projection]:
    """The notifier's projection and its per-event reference, with a clock that finds every
    event too old to page anyone: the rows alone (the alerts: tests/integration/test_notifier_*)."""
    paged = notifier_incidents.projection(
        event_log, Settings(), None, clock=lambda: datetime(2100, 1, 1, tzinfo=UTC)
    )
    return paged, _per_event(paged, _incidents)
