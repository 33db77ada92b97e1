"""Domain handlers of the Inventory API: commands append events, queries read the view.

Every handler works inside the caller's account (`auth.current()`); another account's
domain ids answer NOT_FOUND, exactly as ids that do not exist.
"""

from __future__ import annotations

import base64
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

from google.protobuf.timestamp_pb2 import Timestamp

from certwatch.contracts import domain as dc
from certwatch.contracts import quota as qc
from certwatch.inventory import csv_import, quota_stream, views
from certwatch.inventory import domain as d
from certwatch.inventory.contacts import MAX_CONTACTS_PER_DOMAIN
from certwatch.inventory.contacts_api import ContactHandlers
from certwatch.platform import auth, error_codes, retry
from certwatch.platform.errors import ConcurrencyConflict, FailedPrecondition, InvalidArgument, NotFound
from certwatch.platform.eventlog import Appended, Conn, EventLog
from certwatch.platform.events import NewEvent
from certwatch.platform.projection import catch_up_past
from certwatch.rules import quota
from certwatch.rules import targets as validation
from certwatch.rules.causes import Cause
from certwatch.v1 import inventory_pb2 as pb

MAX_PAGE_SIZE = 1000
MAX_RECHECK_IDS = 1000
_COMMAND_ATTEMPTS = 3
DEFAULT_PAGE_SIZE = 100
# days_left was computed at the last check; it counts down by calendar day until the next.
# The last column is `stale`; its parameter (seconds) comes first in every query using them.
_COLUMNS = (
    "domain_id, host, port, enabled, status, primary_cause, causes, brand, valid_from, valid_to,"
    " days_left - (current_date - last_checked_at::date), contact_ids, added_at, first_enabled_at, service_ends_on, last_checked_at,"
    " recommended_action, enabled AND last_checked_at < now() - make_interval(secs => %s)"
)


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


def _ts(value: datetime | date | None) -> Timestamp | None:
    if value is None:
        return None
    if not isinstance(value, datetime):
        value = datetime(value.year, value.month, value.day, tzinfo=UTC)
    stamp = Timestamp()
    stamp.FromDatetime(value.astimezone(UTC))
    return stamp


def _contact_ids(ids: Sequence[str], field: str = "contact_ids") -> tuple[str, ...]:
    if len(ids) > MAX_CONTACTS_PER_DOMAIN:
        raise InvalidArgument(
            [(field, f"at most {MAX_CONTACTS_PER_DOMAIN} contacts per domain, got {len(ids)}")]
        )
    if len(set(ids)) != len(ids):
        raise InvalidArgument([(field, "a contact is listed twice")])
    return tuple(ids)


class DomainHandlers(ContactHandlers):
    """Domains name their contacts by id or name, resolved within the caller's account."""

    _log: EventLog
    _now: Callable[[], datetime]
    _stale_after_s: float

    # -- commands -------------------------------------------------------------------------

    @retry.on_conflict
    async def AddDomains(self, request: pb.AddDomainsRequest, context: Any) -> pb.AddDomainsResponse:
        principal = auth.current()
        entries = self._entries(request)
        results: list[pb.AddDomainResult] = []
        added: list[tuple[_Entry, str]] = []
        now = self._now()
        async with self._log.pool.connection() as conn, conn.transaction():
            # Only a batch that enables reserves units (and queues on the account's quota lock).
            enabling = any(e.enable for e in entries)
            quota_state = (await quota_stream.load_locked(self._log, conn, principal.account_id)
                           if enabling else quota.QuotaState())  # fmt: skip
            reserved: list[NewEvent] = []
            batch: list[tuple[str, Sequence[NewEvent], int | None]] = []
            meta = auth.event_metadata(principal)
            shared_contacts = await self._resolve_contacts(conn, principal, list(request.contact_ids))
            for entry in entries:
                if entry.target is None:
                    results.append(
                        pb.AddDomainResult(entry=entry.raw, row=entry.row, error=entry.error or "")
                    )
                    continue
                try:
                    contacts = (await self._resolve_contacts(conn, principal, entry.contact_ids)
                                if request.csv else shared_contacts)  # fmt: skip
                except InvalidArgument as exc:
                    results.append(pb.AddDomainResult(entry=entry.raw, row=entry.row, error=str(exc)))
                    continue
                domain_id = uuid.uuid4()
                existing = await self._claim(conn, principal.account_id, entry.target, domain_id)
                if existing is not None:
                    results.append(pb.AddDomainResult(
                        entry=entry.raw, row=entry.row, existing_domain_id=existing,
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
                added.append((entry, str(domain_id)))
                results.append(
                    pb.AddDomainResult(entry=entry.raw, row=entry.row, added=True, warnings=warnings)
                )
            if reserved:
                batch.append((qc.stream_id(principal.account_id), reserved, None))
            appended = await self._log.append_batch(batch, conn=conn)
        if appended:
            await catch_up_past(self._log, views.DOMAIN_VIEW, appended[-1].cursor)
        domains = {row.id: row for row in await self._rows_by_id([i for _, i in added], principal)}
        by_row = {entry.row: domain_id for entry, domain_id in added}
        for result in results:
            if result.added:
                result.domain.CopyFrom(domains[by_row[result.row]])
        return pb.AddDomainsResponse(results=results)

    def _entries(self, request: pb.AddDomainsRequest) -> list[_Entry]:
        contact_ids = _contact_ids(list(request.contact_ids))
        try:
            port = validation.validate_port(request.port or None) if request.port else None
        except validation.ValidationError as exc:
            raise _invalid(exc) from exc
        if request.csv:
            try:
                rows = csv_import.parse_csv(request.csv)
            except validation.ValidationError as exc:
                raise _invalid(exc) from exc
            return [
                _Entry(r.row, r.domain.target.host if r.domain else f"row {r.row}",
                       r.domain.target if r.domain else None,
                       tuple(w.message for w in r.warnings),
                       "; ".join(f"{e.field}: {e.description}" for e in r.errors) or None,
                       r.domain.contacts if r.domain else (), r.domain.enable if r.domain else False)
                for r in rows
            ]  # fmt: skip
        if not request.domains.strip():
            raise InvalidArgument([("domains", "give at least one domain name or IP address, or a CSV file")])
        try:
            listed = validation.parse_domain_list(request.domains)
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
                contact_ids, request.enable,
            ))  # fmt: skip
        return entries

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

    @retry.on_conflict
    async def EnableMonitoring(self, request: pb.DomainRef, context: Any) -> pb.Domain:
        return await self._command(request.id, "enable")

    @retry.on_conflict
    async def DisableMonitoring(self, request: pb.DomainRef, context: Any) -> pb.Domain:
        return await self._command(request.id, "disable")

    @retry.on_conflict
    async def EditDomain(self, request: pb.EditDomainRequest, context: Any) -> pb.Domain:
        port = None
        if request.port:
            try:
                port = validation.validate_port(request.port)
            except validation.ValidationError as exc:
                raise _invalid(exc) from exc
        contacts = _contact_ids(list(request.contact_ids)) if request.set_contacts else None
        return await self._command(request.id, "edit", port=port, contact_ids=contacts)

    @retry.on_conflict
    async def RemoveDomain(self, request: pb.DomainRef, context: Any) -> pb.RemoveDomainResponse:
        await self._command(request.id, "remove")
        return pb.RemoveDomainResponse()

    async def RecheckDomains(
        self, request: pb.RecheckDomainsRequest, context: Any
    ) -> pb.RecheckDomainsResponse:
        """Probe each domain now; an id that cannot be re-checked is reported, not fatal."""
        if not request.ids:
            raise InvalidArgument([("ids", "give at least one domain id")])
        if len(request.ids) > MAX_RECHECK_IDS:
            raise InvalidArgument(
                [("ids", f"at most {MAX_RECHECK_IDS} ids per call, got {len(request.ids)}")]
            )
        results = []
        for domain_id in dict.fromkeys(request.ids):
            try:
                results.append(
                    pb.RecheckResult(id=domain_id, domain=await self._command(domain_id, "recheck"))
                )
            except (InvalidArgument, NotFound, FailedPrecondition) as exc:
                mapped = error_codes.answer(exc)
                assert mapped is not None
                results.append(pb.RecheckResult(id=domain_id, code=mapped.code, error=str(exc)))
        return pb.RecheckDomainsResponse(results=results)

    async def _command(self, domain_id: str, name: str, **kwargs: Any) -> pb.Domain:
        principal = auth.current()
        stream = dc.stream_id(self._parse_id(domain_id))
        for attempt in range(_COMMAND_ATTEMPTS):
            try:
                appended = await self._decide(principal, domain_id, stream, name, **kwargs)
                break
            except ConcurrencyConflict:
                # The domain's enable check concluded (or another command landed) meanwhile:
                # decide again on the new state.
                if attempt == _COMMAND_ATTEMPTS - 1:
                    raise
        if appended:
            await catch_up_past(self._log, views.DOMAIN_VIEW, appended[-1].cursor)
        if name == "remove":
            return pb.Domain(id=domain_id)
        return (await self._rows_by_id([domain_id], principal))[0]

    async def _decide(
        self, principal: auth.Principal, domain_id: str, stream: str, name: str, *,
        port: int | None = None, contact_ids: tuple[str, ...] | None = None,
    ) -> list[Appended]:  # fmt: skip
        now = self._now()
        async with self._log.pool.connection() as conn, conn.transaction():
            recorded = await self._log.read_stream(stream, conn=conn)
            state = d.fold([(e.type, e.data) for e in recorded])
            if state is None or state.removed or state.account_id != str(principal.account_id):
                raise NotFound(f"no domain {domain_id} in this account")
            meta = auth.event_metadata(principal)
            quota_state = None
            probes = name == "enable" or (name in ("edit", "recheck") and state.enabled)
            if probes and d.wants_unit(state, now.date()):
                quota_state = await quota_stream.load_locked(self._log, conn, principal.account_id)
            if name == "enable":
                events = d.enable(state, quota_state, now)
            elif name == "recheck":
                events = d.recheck(state, quota_state, now)
            elif name == "disable":
                events = d.disable(state, now)
            elif name == "edit":
                if contact_ids is not None:
                    contact_ids = await self._resolve_contacts(conn, principal, contact_ids)
                events = d.edit_and_recheck(state, port=port, contact_ids=contact_ids,
                                            quota_state=quota_state, now=now)  # fmt: skip
                if port not in (None, state.port):
                    assert port is not None
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
            return await self._log.append_batch(batch, conn=conn)

    @staticmethod
    def _parse_id(raw: str) -> uuid.UUID:
        try:
            return uuid.UUID(raw)
        except ValueError:
            raise InvalidArgument([("id", f"not a domain id (a UUID): {raw[:64]!r}")]) from None

    # -- queries ----------------------------------------------------------------------------

    async def GetDomain(self, request: pb.GetDomainRequest, context: Any) -> pb.Domain:
        principal = auth.current()
        self._parse_id(request.id)
        rows = await self._rows_by_id([request.id], principal)
        if not rows:
            raise NotFound(f"no domain {request.id} in this account")
        return rows[0]

    async def ListDomains(self, request: pb.ListDomainsRequest, context: Any) -> pb.ListDomainsResponse:
        principal = auth.current()
        size = request.page_size or DEFAULT_PAGE_SIZE
        if size > MAX_PAGE_SIZE:
            raise InvalidArgument([("page_size", f"at most {MAX_PAGE_SIZE}")])
        clauses: list[str] = ["account_id = %s"]
        params: list[Any] = [self._stale_after_s, principal.account_id]
        if request.page_token:
            host, last_id = _decode_token(request.page_token)
            clauses.append("(host, domain_id) > (%s, %s)")
            params += [host, last_id]
        if request.status:
            clauses.append("status = %s")
            params.append(_one_of("status", request.status, views.LIST_STATUSES))
        if request.cause:
            clauses.append("%s = ANY(causes)")
            params.append(_one_of("cause", request.cause, tuple(Cause)))
        if request.has_max_days_left:
            clauses.append("days_left - (current_date - last_checked_at::date) <= %s")
            params.append(request.max_days_left)
        if request.search:
            if len(request.search) > 253:
                raise InvalidArgument([("search", "at most 253 characters")])
            # Either form finds an internationalised name: punycode in host, Unicode beside it.
            clauses.append("(strpos(host, %s) > 0 OR strpos(coalesce(host_unicode, host), %s) > 0)")
            params += [request.search.lower(), request.search.lower()]
        sql = (
            f"SELECT {_COLUMNS} FROM inventory_domains WHERE {' AND '.join(clauses)}"
            f" ORDER BY host, domain_id LIMIT {size + 1}"
        )
        async with self._log.pool.connection() as conn:
            rows = await (await conn.execute(sql.encode(), params)).fetchall()
        token = ""
        if len(rows) > size:
            rows = rows[:size]
            token = _encode_token(rows[-1][1], str(rows[-1][0]))
        return pb.ListDomainsResponse(domains=[_domain(r) for r in rows], next_page_token=token)

    async def _rows_by_id(self, ids: Sequence[str], principal: auth.Principal) -> list[pb.Domain]:
        if not ids:
            return []
        async with self._log.pool.connection() as conn:
            cur = await conn.execute(
                f"SELECT {_COLUMNS} FROM inventory_domains"
                " WHERE domain_id = ANY(%b::uuid[]) AND account_id = %s".encode(),
                (self._stale_after_s, list(ids), principal.account_id),
            )
            return [_domain(r) for r in await cur.fetchall()]


def _domain(r: Sequence[Any]) -> pb.Domain:
    domain = pb.Domain(
        id=str(r[0]), host=r[1], port=r[2], monitoring_enabled=r[3], status=r[4],
        primary_cause=r[5] or "", causes=r[6], brand=r[7] or "", contact_ids=r[11],
        recommended_action=r[16] or "", stale=bool(r[17]),
    )  # fmt: skip
    if r[10] is not None:
        domain.days_left, domain.has_days_left = r[10], True
    for field_name, value in (("valid_from", r[8]), ("valid_to", r[9]), ("added_at", r[12]),
                              ("first_enabled_at", r[13]), ("service_ends_at", r[14]),
                              ("last_checked_at", r[15])):  # fmt: skip
        stamp = _ts(value)
        if stamp is not None:
            getattr(domain, field_name).CopyFrom(stamp)
    return domain


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
