"""The inventory's domain use cases, apart from any transport: commands append events,
queries read the view.

Callable as plain Python with typed commands and typed results (`DomainRow`,
`AddOutcome`, `RecheckOutcome`): the gRPC servicer (`domains_api`) is a thin adapter over
them, and the coming HTTP API and console call the same code. Every use case works inside
the principal's account; another account's domain ids are NOT_FOUND, exactly as ids that
do not exist. Errors are the platform's (`InvalidArgument`, `NotFound`, ...), mapped once
for every transport (`platform.error_codes`).
"""

from __future__ import annotations

import base64
import contextlib
import uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta
from typing import Any

import psycopg
from psycopg_pool import PoolTimeout

from certwatch.contracts import domain as dc
from certwatch.contracts import quota as qc
from certwatch.contracts.payload import Payload, decode, payload_type
from certwatch.inventory import csv_import, quota_stream, views
from certwatch.inventory import domain as d
from certwatch.inventory.contacts import MAX_CONTACTS_PER_DOMAIN
from certwatch.inventory.list_statuses import LIST_STATUSES
from certwatch.platform import auth, error_codes, retry
from certwatch.platform.errors import (
    ConcurrencyConflict,
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    TransientStoreError,
)
from certwatch.platform.eventlog import Appended, Conn, Cursor, EventLog
from certwatch.platform.events import NewEvent, RecordedEvent
from certwatch.platform.page_tables import Row
from certwatch.platform.projection import catch_up_now
from certwatch.rules import quota
from certwatch.rules import targets as validation
from certwatch.rules.causes import Cause

MAX_PAGE_SIZE = 1000
MAX_RECHECK_IDS = 1000
DEFAULT_PAGE_SIZE = 100
# days_left was computed with the verdict (`last_checked_at`: the last verdict *change*);
# it counts down by calendar day from then. The last check is the later of that and the
# domain's last observation (`probe_latest`, platform.observations: a probe that changes
# nothing appends no verdict). The last column is `stale` (never for a row an enable check
# has not concluded yet: no verdict time); its parameter (seconds) comes first in every
# query using them.
_CHECKED = "greatest(last_checked_at, probe_latest.observed_at)"
_COLUMNS = (
    "domain_id, host, port, enabled, status, primary_cause, causes, brand, valid_from, valid_to,"
    " days_left - (current_date - last_checked_at::date), contact_ids, added_at, first_enabled_at, service_ends_on,"
    f" {_CHECKED}, recommended_action,"
    " enabled AND status <> 'ENABLE_FAILED' AND last_checked_at IS NOT NULL"
    f" AND {_CHECKED} < now() - make_interval(secs => %s)"
)
_FROM = "inventory_domains LEFT JOIN probe_latest USING (domain_id)"
# Reads of the list are planned at every call (`prepare=False`), never from a cached generic
# plan: psycopg prepares a statement at its fifth call, and PostgreSQL keeps the generic plan
# it then costs on the tables as they are until their next ANALYZE. Planned while a new
# account's list was small, a read of one domain scanned both tables whole ever after: 6.4 ms
# of PostgreSQL's time a call at 10,000 domains against about 0.1 ms planning it each time
# (pg_stat_statements, bench/enable_at_scale: 10 of PostgreSQL's 16 CPU seconds).
# The view's own row beside the computed columns, for folding in what it has not applied yet.
_VIEW_ROW = ", ".join(
    f"inventory_domains.{c}::text" if t == "uuid" else f"inventory_domains.{c}"
    for c, t in views.TABLE.columns.items()
)
_N_COLUMNS = 18  # of _COLUMNS
_Own = Sequence[tuple[Cursor, Payload]]


@dataclass(frozen=True, slots=True)
class AddDomains:
    """Domains as a list (`"a.example, b.example:8443"`) or as CSV bytes in the template's
    format (`csv` wins); `port` applies to entries that name none (443 when None)."""

    domains: str = ""
    csv: bytes = b""
    port: int | None = None
    contact_ids: tuple[str, ...] = ()
    enable: bool = False


@dataclass(frozen=True, slots=True)
class _OnOneDomain:
    domain_id: str


class Enable(_OnOneDomain):
    __slots__ = ()


class Disable(_OnOneDomain):
    __slots__ = ()


class Recheck(_OnOneDomain):
    __slots__ = ()


class Remove(_OnOneDomain):
    __slots__ = ()


@dataclass(frozen=True, slots=True)
class Edit:
    """`port` None leaves it; `contact_ids` None leaves them, () removes them all."""

    domain_id: str
    port: int | None = None
    contact_ids: tuple[str, ...] | None = None


DomainCommand = Enable | Disable | Recheck | Remove | Edit


@dataclass(frozen=True, slots=True)
class ListQuery:
    page_size: int = 0  # DEFAULT_PAGE_SIZE when 0
    page_token: str = ""
    status: str = ""
    cause: str = ""
    max_days_left: int | None = None
    search: str = ""


@dataclass(frozen=True, slots=True)
class DomainRow:
    """A domain as the list shows it (`days_left` counts down by calendar day since the check)."""

    id: str
    host: str
    port: int
    monitoring_enabled: bool
    status: str
    primary_cause: str | None
    causes: tuple[str, ...]
    brand: str | None
    valid_from: datetime | None
    valid_to: datetime | None
    days_left: int | None
    contact_ids: tuple[str, ...]
    added_at: datetime | None
    first_enabled_at: datetime | None
    service_ends_on: date | None
    last_checked_at: datetime | None
    recommended_action: str | None
    stale: bool


@dataclass(frozen=True, slots=True)
class AddOutcome:
    """One entry of an `AddDomains`: added (with its row), or why not."""

    entry: str
    row: int
    domain: DomainRow | None = None
    error: str = ""
    existing_domain_id: str = ""
    warnings: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class RecheckOutcome:
    """One id of a re-check: the domain re-checked, or the error's code and message."""

    id: str
    domain: DomainRow | None = None
    code: str = ""
    error: str = ""


@dataclass(frozen=True, slots=True)
class _Entry:
    row: int
    raw: str
    target: validation.Target | None
    warnings: tuple[str, ...]
    error: str | None
    contact_ids: tuple[str, ...]
    enable: bool


def _new(event_type: str, data: dict[str, Any], metadata: Mapping[str, Any]) -> NewEvent:
    return NewEvent(event_type, data, schema_version=d.schema_version(event_type), metadata=metadata)


def _invalid(exc: validation.ValidationError) -> InvalidArgument:
    return InvalidArgument([(v.field, f"{v.description} [{v.rule}]") for v in exc.violations])


def _contact_ids(ids: Sequence[str], field: str = "contact_ids") -> tuple[str, ...]:
    if len(ids) > MAX_CONTACTS_PER_DOMAIN:
        raise InvalidArgument(
            [(field, f"at most {MAX_CONTACTS_PER_DOMAIN} contacts per domain, got {len(ids)}")]
        )
    if len(set(ids)) != len(ids):
        raise InvalidArgument([(field, "a contact is listed twice")])
    return tuple(ids)


ContactResolver = Callable[[Conn, auth.Principal, Sequence[str]], Awaitable[tuple[str, ...]]]


class DomainUseCases:
    """Domains name their contacts by id or name, resolved within the principal's account
    (`resolve_contacts`)."""

    def __init__(
        self, event_log: EventLog, resolve_contacts: ContactResolver, *,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC), stale_after_s: float = 600.0,
    ) -> None:  # fmt: skip
        self._log = event_log
        self._resolve_contacts = resolve_contacts
        self._now = clock
        self._stale_after_s = stale_after_s

    # -- commands -------------------------------------------------------------------------

    @retry.on_conflict
    async def add(self, principal: auth.Principal, command: AddDomains) -> list[AddOutcome]:
        entries = self._entries(command)
        results: list[AddOutcome] = []
        added: list[tuple[_Entry, str, tuple[str, ...]]] = []
        now = self._now()
        async with self._log.pool.connection() as conn, conn.transaction():
            meta = auth.event_metadata(principal)
            shared_contacts = await self._resolve_contacts(conn, principal, command.contact_ids)
            accepted: list[tuple[_Entry, tuple[str, ...], uuid.UUID]] = []
            for entry in entries:
                if entry.target is None:
                    results.append(AddOutcome(entry.raw, entry.row, error=entry.error or ""))
                    continue
                try:
                    contacts = (await self._resolve_contacts(conn, principal, entry.contact_ids)
                                if command.csv else shared_contacts)  # fmt: skip
                except InvalidArgument as exc:
                    results.append(AddOutcome(entry.raw, entry.row, error=str(exc)))
                    continue
                accepted.append((entry, contacts, uuid.uuid4()))
            taken = await self._claim_all(
                conn, principal.account_id, [(e.target, i) for e, _, i in accepted if e.target is not None]
            )
            # Decided on the quota as committed, unlocked; the account's lock is taken only to
            # append the reservations, after the domains' own events, and the decision is
            # checked then (see `_reserve`): enables elsewhere in the account wait behind this
            # batch for its quota append and commit, not for the whole batch.
            enabling = any(e.enable and i not in taken for e, _, i in accepted)
            quota_state = (await quota_stream.load(self._log, conn, principal.account_id, advance=False)
                           if enabling else quota.QuotaState())  # fmt: skip
            reserved: list[NewEvent] = []
            batch: list[tuple[str, Sequence[NewEvent], int | None]] = []
            for entry, contacts, domain_id in accepted:
                assert entry.target is not None
                if (existing := taken.get(domain_id)) is not None:
                    results.append(AddOutcome(
                        entry.raw, entry.row, existing_domain_id=existing,
                        error=f"{entry.target.host}:{entry.target.port} is already monitored as {existing}",
                    ))  # fmt: skip
                    continue
                t, data = d.add(domain_id, principal.account_id, entry.target.host, entry.target.port,
                                contacts, now)  # fmt: skip
                events = [NewEvent(t, data, metadata=meta)]
                warnings = list(entry.warnings)
                if entry.enable:
                    state = d.evolve(None, t, data)
                    try:
                        enable_events = d.enable(state, quota_state, now)
                    except FailedPrecondition as exc:
                        warnings.append(f"added but not enabled: {exc}")
                        enable_events = []
                    for et, edata in enable_events:
                        if et in qc.QUOTA_EVENTS:
                            quota_state = d.quota_evolve(quota_state, et, edata)
                            reserved.append(_new(et, edata, meta))
                        else:
                            events.append(_new(et, edata, meta))
                batch.append((dc.stream_id(domain_id), events, 0))
                added.append((entry, str(domain_id), tuple(warnings)))
                results.append(AddOutcome(entry.raw, entry.row))  # its row is filled in below
            results.sort(key=lambda r: r.row)
            appended = await self._log.append_batch(batch, conn=conn)
            if reserved:
                batch.append((qc.stream_id(principal.account_id), reserved, None))
                appended += await self._reserve(conn, principal, reserved)
        # Committed: from here on a lost database must not turn "added" into an error (the
        # caller would retry and be told "already monitored"); the rows come from the events.
        own = _own_events(batch, appended)
        domains = await self._as_written(principal, {i: own[dc.stream_id(i)] for _, i, _ in added})
        by_row = {entry.row: (domain_id, warnings) for entry, domain_id, warnings in added}
        return [
            replace(r, domain=domains[by_row[r.row][0]], warnings=by_row[r.row][1])
            if not r.error and not r.existing_domain_id
            else r
            for r in results
        ]

    async def _reserve(
        self, conn: Conn, principal: auth.Principal, reserved: Sequence[NewEvent]
    ) -> list[Appended]:
        """Append a batch's reservations under the account's quota lock, if the quota as it
        is now still has the units they were decided on; else the batch decides again (a
        conflict: `retry.on_conflict`, nothing of it was committed)."""
        now_state = await quota_stream.load_locked(self._log, conn, principal.account_id)
        if now_state.available_units < len(reserved):  # a unit each
            stream = qc.stream_id(principal.account_id)
            raise ConcurrencyConflict(
                stream, None, None, f"{stream}: quota changed while a batch was decided"
            )
        return await self._log.append_batch([(qc.stream_id(principal.account_id), reserved, None)], conn=conn)

    async def _as_written(self, principal: auth.Principal, own: Mapping[str, _Own]) -> dict[str, DomainRow]:
        """Each domain as the list will show it once its view has applied `own` (the domain's
        events, the caller's just appended among them): the view's row with the events it
        has not applied yet folded in by the view's own rule (`views.step`).

        A command answers at once, never waiting for the view to catch up (a 500-domain add
        keeps it busy for a while): read-your-writes for the writer without a wait.
        The view's row and its checkpoint come from one statement, so one snapshot.
        Without a database (lost after the commit) the rows come from the events alone."""
        found: dict[str, Sequence[Any]] = {}
        applied: Cursor = (-1, -1)
        with contextlib.suppress(psycopg.OperationalError, PoolTimeout, TransientStoreError):
            async with self._log.pool.connection() as conn:
                cur = await conn.execute(
                    f"SELECT {_COLUMNS}, {_VIEW_ROW}, cp.transaction_id::text, cp.position FROM {_FROM}"
                    " LEFT JOIN checkpoints cp ON cp.name = %s"
                    " WHERE domain_id = ANY(%b::uuid[]) AND account_id = %s".encode(),
                    (self._stale_after_s, views.DOMAIN_VIEW.name, list(own), principal.account_id),
                    prepare=False,
                )
                found = {str(r[0]): r for r in await cur.fetchall()}
        now = self._now()
        out: dict[str, DomainRow] = {}
        for domain_id, events in own.items():
            r = found.get(domain_id)
            view_row: Row | None = None
            if r is not None:
                applied = (int(r[-2]), r[-1]) if r[-2] is not None else (0, 0)
                if all(cursor <= applied for cursor, _ in events):
                    out[domain_id] = _row(r)
                    continue
                view_row = dict(zip(views.TABLE.columns, r[_N_COLUMNS:-2], strict=True))
            for cursor, payload in events:
                if r is None or cursor > applied:
                    view_row = views.step(view_row, payload)
            if view_row is not None:
                out[domain_id] = self._from_view(view_row, r[15] if r is not None else None, now)
        return out

    def _from_view(self, row: Row, checked: datetime | None, now: datetime) -> DomainRow:
        """A view row as `rows` would read it (the SQL of `_COLUMNS`, in Python)."""
        verdict_at: datetime | None = row["last_checked_at"]
        checked = max((t for t in (verdict_at, checked) if t is not None), default=None)
        days_left = row["days_left"]
        if days_left is not None and verdict_at is not None:
            days_left -= (now.astimezone(UTC).date() - verdict_at.astimezone(UTC).date()).days
        stale = (row["enabled"] and row["status"] != "ENABLE_FAILED" and verdict_at is not None
                 and checked is not None and checked < now - timedelta(seconds=self._stale_after_s))  # fmt: skip
        return DomainRow(
            id=row["domain_id"], host=row["host"], port=row["port"], monitoring_enabled=row["enabled"],
            status=row["status"], primary_cause=row["primary_cause"], causes=tuple(row["causes"]),
            brand=row["brand"], valid_from=row["valid_from"], valid_to=row["valid_to"], days_left=days_left,
            contact_ids=tuple(row["contact_ids"]), added_at=row["added_at"],
            first_enabled_at=row["first_enabled_at"], service_ends_on=row["service_ends_on"],
            last_checked_at=checked, recommended_action=row["recommended_action"], stale=stale,
        )  # fmt: skip

    @staticmethod
    def _entries(command: AddDomains) -> list[_Entry]:
        contact_ids = _contact_ids(command.contact_ids)
        try:
            port = validation.validate_port(command.port) if command.port is not None else None
        except validation.ValidationError as exc:
            raise _invalid(exc) from exc
        if command.csv:
            try:
                rows = csv_import.parse_csv(command.csv)
            except validation.ValidationError as exc:
                raise _invalid(exc) from exc
            return [
                _Entry(r.row, r.domain.target.host if r.domain else r.given or f"row {r.row}",
                       r.domain.target if r.domain else None,
                       tuple(w.message for w in r.warnings),
                       "; ".join(f"{e.field}: {e.description}" for e in r.errors) or None,
                       r.domain.contacts if r.domain else (),
                       bool(command.enable if r.domain is None or r.domain.enable is None else r.domain.enable))
                for r in rows
            ]  # fmt: skip
        if not command.domains.strip():
            raise InvalidArgument([("domains", "give at least one domain name or IP address, or a CSV file")])
        try:
            listed = validation.parse_domain_list(command.domains)
        except validation.ValidationError as exc:
            raise _invalid(exc) from exc
        entries = []
        for r in listed:
            target = r.target
            if target is not None and port is not None and ":" not in r.raw.rsplit("]", 1)[-1]:
                target = validation.Target(target.host, port, target.is_ip)
            warnings = validation.target_warnings(target) if target is not None else ()
            entries.append(_Entry(
                r.index, r.raw, target, tuple(w.message for w in warnings),
                f"{r.error.field}: {r.error.description}" if r.error else None,
                contact_ids, command.enable,
            ))  # fmt: skip
        return entries

    async def _claim_all(
        self, conn: Conn, account_id: uuid.UUID, wanted: Sequence[tuple[validation.Target, uuid.UUID]]
    ) -> dict[uuid.UUID, str]:
        """Reserve each host:port for the account in two statements, whatever the batch size;
        return, for each domain id that did not get its target, the domain that holds it (a
        target listed twice in one batch goes to its first entry)."""
        if not wanted:
            return {}
        cur = await conn.execute(
            "INSERT INTO inventory_claims (account_id, host, port, domain_id)"
            " SELECT %s, t.host, t.port, t.domain_id FROM unnest(%b::text[], %b::int[], %b::uuid[])"
            " WITH ORDINALITY AS t(host, port, domain_id, n) ORDER BY t.n"
            " ON CONFLICT (account_id, host, port) DO NOTHING RETURNING domain_id",
            (account_id, [t.host for t, _ in wanted], [t.port for t, _ in wanted], [i for _, i in wanted]),
        )
        won = {row[0] for row in await cur.fetchall()}
        lost = [(t, i) for t, i in wanted if i not in won]
        if not lost:
            return {}
        cur = await conn.execute(
            "SELECT c.host, c.port, c.domain_id::text FROM inventory_claims c"
            " JOIN unnest(%b::text[], %b::int[]) AS t(host, port) ON c.host = t.host AND c.port = t.port"
            " WHERE c.account_id = %s",
            ([t.host for t, _ in lost], [t.port for t, _ in lost], account_id),
        )
        holders = {(r[0], r[1]): r[2] for r in await cur.fetchall()}
        return {i: holders[(t.host, t.port)] for t, i in lost}

    async def _claim(
        self, conn: Conn, account_id: uuid.UUID, target: validation.Target, domain_id: uuid.UUID
    ) -> str | None:
        """Reserve host:port for the account; return the existing domain's id if taken."""
        cur = await conn.execute(
            "INSERT INTO inventory_claims (account_id, host, port, domain_id) VALUES (%s, %s, %s, %s)"
            " ON CONFLICT (account_id, host, port) DO NOTHING RETURNING domain_id",
            (account_id, target.host, target.port, domain_id),
        )
        if await cur.fetchone() is not None:
            return None
        cur = await conn.execute(
            "SELECT domain_id FROM inventory_claims WHERE account_id = %s AND host = %s AND port = %s",
            (account_id, target.host, target.port),
        )
        row = await cur.fetchone()
        return str(row[0]) if row else None

    async def run(self, principal: auth.Principal, command: DomainCommand) -> DomainRow | None:
        """Run one command on one domain; the domain as it is now (None once removed)."""
        return await self._command(principal, command)

    async def recheck(self, principal: auth.Principal, domain_ids: Sequence[str]) -> list[RecheckOutcome]:
        """Probe each domain now; an id that cannot be re-checked is reported, not fatal."""
        if not domain_ids:
            raise InvalidArgument([("ids", "give at least one domain id")])
        if len(domain_ids) > MAX_RECHECK_IDS:
            raise InvalidArgument([("ids", f"at most {MAX_RECHECK_IDS} ids per call, got {len(domain_ids)}")])
        results = []
        for domain_id in dict.fromkeys(domain_ids):
            try:
                results.append(RecheckOutcome(domain_id, await self._command(principal, Recheck(domain_id))))
            except (InvalidArgument, NotFound, FailedPrecondition) as exc:
                mapped = error_codes.answer(exc)
                assert mapped is not None
                results.append(RecheckOutcome(domain_id, code=mapped.code, error=str(exc)))
        return results

    async def _command(self, principal: auth.Principal, command: DomainCommand) -> DomainRow | None:
        stream = dc.stream_id(_parse_id(command.domain_id))
        own = await self._decide(principal, stream, command)
        if isinstance(command, Remove):
            return None
        return (await self._as_written(principal, {command.domain_id: own}))[command.domain_id]

    @retry.on_conflict  # the enable check concluded, or another command landed: decide again
    async def _decide(self, principal: auth.Principal, stream: str, command: DomainCommand) -> _Own:
        """Append what the command decides; the domain's events, those just appended last."""
        now = self._now()
        async with self._log.pool.connection() as conn, conn.transaction():
            recorded = await self._log.read_stream(stream, conn=conn)
            state = d.fold([(e.type, e.data) for e in recorded])
            if state is None or state.removed or state.account_id != str(principal.account_id):
                raise NotFound(f"no domain {command.domain_id} in this account")
            meta = auth.event_metadata(principal)
            quota_state = None
            probes = isinstance(command, Enable) or (isinstance(command, Edit | Recheck) and state.enabled)
            if probes and d.wants_unit(state, now.date()):
                quota_state = await quota_stream.load_locked(self._log, conn, principal.account_id)
            if isinstance(command, Enable):
                events = d.enable(state, quota_state, now)
            elif isinstance(command, Recheck):
                events = d.recheck(state, quota_state, now)
            elif isinstance(command, Disable):
                events = d.disable(state, now)
            elif isinstance(command, Edit):
                port, contact_ids = _port(command.port), command.contact_ids
                if contact_ids is not None:
                    contact_ids = await self._resolve_contacts(conn, principal, _contact_ids(contact_ids))
                events = d.edit_and_recheck(state, port=port, contact_ids=contact_ids,
                                            quota_state=quota_state, now=now)  # fmt: skip
                if port is not None and port != state.port:
                    await conn.execute(
                        "DELETE FROM inventory_claims WHERE domain_id = %s", (state.domain_id,)
                    )
                    existing = await self._claim(
                        conn, principal.account_id, validation.Target(state.host, port, False),
                        uuid.UUID(state.domain_id),
                    )  # fmt: skip
                    if existing is not None:
                        raise InvalidArgument(
                            [("port", f"{state.host}:{port} is already monitored as {existing}")]
                        )
            else:
                events = d.remove(state)
                await conn.execute("DELETE FROM inventory_claims WHERE domain_id = %s", (state.domain_id,))
            quota_events = [_new(t, x, meta) for t, x in events if t in qc.QUOTA_EVENTS]
            batch: list[tuple[str, Sequence[NewEvent], int | None]] = [
                (stream, [_new(t, x, meta) for t, x in events if t not in qc.QUOTA_EVENTS], state.version)
            ]
            if quota_events:
                if quota_state is None:  # a release: lock before any append (see quota_stream)
                    await quota_stream.lock(conn, principal.account_id)
                batch.append((qc.stream_id(principal.account_id), quota_events, None))
            appended = await self._log.append_batch(batch, conn=conn)
        return [*_recorded(recorded), *_own_events(batch, appended).get(stream, ())]

    # -- queries ----------------------------------------------------------------------------

    async def get(self, principal: auth.Principal, domain_id: str) -> DomainRow:
        _parse_id(domain_id)
        rows = await self.rows(principal, [domain_id])
        if not rows:
            raise NotFound(f"no domain {domain_id} in this account")
        return rows[0]

    async def page(self, principal: auth.Principal, query: ListQuery) -> tuple[list[DomainRow], str]:
        """A page of the account's domains by host, and the token of the next page ("" at the end)."""
        size = query.page_size or DEFAULT_PAGE_SIZE
        if size > MAX_PAGE_SIZE:
            raise InvalidArgument([("page_size", f"at most {MAX_PAGE_SIZE}")])
        clauses: list[str] = ["account_id = %s"]
        params: list[Any] = [self._stale_after_s, principal.account_id]
        if query.page_token:
            host, last_id = _decode_token(query.page_token)
            clauses.append("(host, domain_id) > (%s, %s)")
            params += [host, last_id]
        if query.status:
            clauses.append("status = %s")
            params.append(_one_of("status", query.status, LIST_STATUSES))
        if query.cause:
            clauses.append("%s = ANY(causes)")
            params.append(_one_of("cause", query.cause, tuple(Cause)))
        if query.max_days_left is not None:
            clauses.append("days_left - (current_date - last_checked_at::date) <= %s")
            params.append(query.max_days_left)
        if query.search:
            if len(query.search) > 253:
                raise InvalidArgument([("search", "at most 253 characters")])
            # Either form finds an internationalised name: punycode in host, Unicode beside it.
            clauses.append("(strpos(host, %s) > 0 OR strpos(coalesce(host_unicode, host), %s) > 0)")
            params += [query.search.lower(), query.search.lower()]
        await catch_up_now(self._log, views.DOMAIN_VIEW)
        sql = (
            f"SELECT {_COLUMNS} FROM {_FROM} WHERE {' AND '.join(clauses)}"
            f" ORDER BY host, domain_id LIMIT {size + 1}"
        )
        async with self._log.pool.connection() as conn:
            rows = await (await conn.execute(sql.encode(), params, prepare=False)).fetchall()
        token = ""
        if len(rows) > size:
            rows = rows[:size]
            token = _encode_token(rows[-1][1], str(rows[-1][0]))
        return [_row(r) for r in rows], token

    async def rows(self, principal: auth.Principal, ids: Sequence[str]) -> list[DomainRow]:
        """The account's domains among `ids` (others are left out)."""
        if not ids:
            return []
        await catch_up_now(self._log, views.DOMAIN_VIEW)
        async with self._log.pool.connection() as conn:
            cur = await conn.execute(
                f"SELECT {_COLUMNS} FROM {_FROM}"
                " WHERE domain_id = ANY(%b::uuid[]) AND account_id = %s".encode(),
                (self._stale_after_s, list(ids), principal.account_id),
                prepare=False,
            )
            return [_row(r) for r in await cur.fetchall()]


def _recorded(events: Sequence[RecordedEvent]) -> list[tuple[Cursor, Payload]]:
    """A domain stream's recorded events the list view folds, typed."""
    kinds = set(views.DOMAIN_VIEW.event_types)
    return [(e.cursor, decode(e)) for e in events if e.type in kinds]


def _own_events(
    batch: Sequence[tuple[str, Sequence[NewEvent], int | None]], appended: Sequence[Appended]
) -> dict[str, list[tuple[Cursor, Payload]]]:
    """The events of an appended batch, typed, with where each landed, by stream."""
    out: dict[str, list[tuple[Cursor, Payload]]] = {}
    landed = iter(appended)
    for stream, events, _ in batch:
        own = out.setdefault(stream, [])
        for event, where in zip(events, landed, strict=False):
            own.append((where.cursor, payload_type(event.type).from_data(event.data)))
    return out


def _row(r: Sequence[Any]) -> DomainRow:
    return DomainRow(
        id=str(r[0]), host=r[1], port=r[2], monitoring_enabled=r[3], status=r[4], primary_cause=r[5],
        causes=tuple(r[6]), brand=r[7], valid_from=r[8], valid_to=r[9], days_left=r[10],
        contact_ids=tuple(r[11]), added_at=r[12], first_enabled_at=r[13], service_ends_on=r[14],
        last_checked_at=r[15], recommended_action=r[16], stale=bool(r[17]),
    )  # fmt: skip


def _port(port: int | None) -> int | None:
    try:
        return None if port is None else validation.validate_port(port)
    except validation.ValidationError as exc:
        raise _invalid(exc) from exc


def _parse_id(raw: str) -> uuid.UUID:
    try:
        return uuid.UUID(raw)
    except ValueError:
        raise InvalidArgument([("id", f"not a domain id (a UUID): {raw[:64]!r}")]) from None


def _one_of(field: str, value: str, valid: Sequence[str]) -> str:
    """The filter value in upper case, or INVALID_ARGUMENT listing the valid ones."""
    if value.upper() not in valid:
        raise InvalidArgument([(field, f"{value[:64]!r} is not one of {', '.join(valid)}")])
    return value.upper()


def _encode_token(host: str, domain_id: str) -> str:
    return base64.urlsafe_b64encode(f"{host}\n{domain_id}".encode()).decode()


def _decode_token(token: str) -> tuple[str, str]:
    try:
        host, domain_id = base64.urlsafe_b64decode(token.encode()).decode().split("\n")
        uuid.UUID(domain_id)
    except (ValueError, UnicodeDecodeError):
        raise InvalidArgument([("page_token", "not a token from a previous ListDomains")]) from None
    return host, domain_id
