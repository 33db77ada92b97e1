"""The inventory's domain use cases run as plain Python, no gRPC: what the coming HTTP API and
console call. Typed commands in, typed rows out, the platform's errors for refusals."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

import pytest
from psycopg_pool import AsyncConnectionPool

from certwatch.contracts import quota as qc
from certwatch.inventory import domain_use_cases as uc
from certwatch.platform import auth
from certwatch.platform.errors import FailedPrecondition, InvalidArgument, NotFound
from certwatch.platform.eventlog import Conn, EventLog
from certwatch.platform.events import NewEvent
from tests.support.probe_results import NOW


async def _no_contacts(conn: Conn, principal: auth.Principal, refs: Sequence[str]) -> tuple[str, ...]:
    if refs:
        raise InvalidArgument([("contact_ids", f"no such contact in this account: {', '.join(refs)}")])
    return ()


@pytest.fixture
async def principal(pool: AsyncConnectionPool[Any], event_log: EventLog) -> auth.Principal:
    account_id, _ = await auth.create_account(pool, f"use-cases-{uuid.uuid4().hex[:8]}")
    purchase = NewEvent(qc.QUOTA_PURCHASED, qc.QuotaPackagePurchased(
        account_id=str(account_id), units=1, domain_count=1, quantity=1, years=1).to_data())  # fmt: skip
    await event_log.append(qc.stream_id(account_id), [purchase], expected_version=None)
    return auth.Principal(account_id, "test-key", "user")


async def test_commands_and_queries_without_a_transport(
    event_log: EventLog, principal: auth.Principal
) -> None:
    domains = uc.DomainUseCases(event_log, _no_contacts, clock=lambda: NOW)
    outcomes = await domains.add(principal, uc.AddDomains(domains="a.example.test, b.example.test:8443"))
    assert [(o.entry, o.error) for o in outcomes] == [("a.example.test", ""), ("b.example.test:8443", "")]
    a, b = (o.domain for o in outcomes)
    assert (
        a is not None
        and b is not None
        and (b.host, b.port, b.status) == ("b.example.test", 8443, "NOT_ENABLED")
    )

    enabled = await domains.run(principal, uc.Enable(a.id))
    assert enabled is not None and enabled.monitoring_enabled and enabled.status == "ENABLING"
    with pytest.raises(FailedPrecondition, match="quota"):  # the account's one unit is reserved
        await domains.run(principal, uc.Enable(b.id))
    edited = await domains.run(principal, uc.Edit(b.id, port=9443))
    assert edited is not None and edited.port == 9443
    with pytest.raises(InvalidArgument, match="port"):
        await domains.run(principal, uc.Edit(b.id, port=70000))

    rechecked = await domains.recheck(principal, [a.id, b.id, str(uuid.uuid4())])
    assert [(r.domain is not None, r.code) for r in rechecked] == [
        (True, ""),
        (False, "FAILED_PRECONDITION"),
        (False, "NOT_FOUND"),
    ]
    rows, token = await domains.page(principal, uc.ListQuery(page_size=1))
    assert [r.host for r in rows] == ["a.example.test"] and token
    rows, token = await domains.page(principal, uc.ListQuery(page_token=token))
    assert [r.host for r in rows] == ["b.example.test"] and token == ""

    assert await domains.run(principal, uc.Remove(b.id)) is None
    with pytest.raises(NotFound):
        await domains.get(principal, b.id)
    other = auth.Principal(uuid.uuid4(), "other", "user")  # another account sees nothing
    with pytest.raises(NotFound):
        await domains.run(other, uc.Disable(a.id))


async def test_a_csv_row_with_an_empty_enable_cell_follows_the_request(
    event_log: EventLog, principal: auth.Principal
) -> None:
    """`domains add --csv FILE --enable`: rows that say nothing are enabled, rows that say no are not."""
    domains = uc.DomainUseCases(event_log, _no_contacts, clock=lambda: NOW)
    csv = b"domain,port,contacts,enable\nc.example.test,443,,\nd.example.test,443,,no\n"
    outcomes = await domains.add(principal, uc.AddDomains(csv=csv, enable=True))
    assert [(o.entry, o.domain.status if o.domain else o.error) for o in outcomes] == [
        ("c.example.test", "ENABLING"), ("d.example.test", "NOT_ENABLED"),
    ]  # fmt: skip
    no_column = await domains.add(principal, uc.AddDomains(csv=b"domain\ne.example.test\n"))
    assert [o.domain.status for o in no_column if o.domain] == ["NOT_ENABLED"]  # not asked: off
    # A rejected row is named by the domain it gives (and its row number), not by the number alone.
    rejected = await domains.add(principal, uc.AddDomains(csv=b"domain,port\nbad_name.test,443\n,443\n"))
    assert [(o.entry, o.row, bool(o.error)) for o in rejected] == [
        ("bad_name.test", 2, True),
        ("row 3", 3, True),
    ]


async def test_commands_answer_what_they_wrote_without_waiting_for_the_list_view(
    event_log: EventLog, principal: auth.Principal
) -> None:
    """The list view is not applied by commands (nothing runs it here): each command's answer
    folds its own events into the view's row, and a query brings the view up to date first."""
    domains = uc.DomainUseCases(event_log, _no_contacts, clock=lambda: NOW)
    (added,) = await domains.add(principal, uc.AddDomains(domains="f.example.test"))
    assert added.domain is not None and added.domain.status == "NOT_ENABLED"
    assert await _view_status(event_log, added.domain.id) is None  # the view has not seen it
    assert [r.status for r in (await domains.page(principal, uc.ListQuery()))[0]] == ["NOT_ENABLED"]

    enabled = await domains.run(principal, uc.Enable(added.domain.id))
    assert enabled is not None and (enabled.monitoring_enabled, enabled.status) == (True, "ENABLING")
    assert await _view_status(event_log, added.domain.id) == "NOT_ENABLED"  # answered before the view
    disabled = await domains.run(principal, uc.Disable(added.domain.id))
    assert disabled is not None and (disabled.monitoring_enabled, disabled.status) == (False, "DISABLED")
    assert (await domains.get(principal, added.domain.id)).status == "DISABLED"  # a query waits


async def test_a_batch_add_decides_again_when_the_quota_moved_before_its_lock(
    event_log: EventLog, principal: auth.Principal, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A batch add reads the quota without the account's lock, so an enable can take the last
    unit meanwhile (here: while the batch's transaction is open, which an enable waiting on
    the batch's lock could not do). The batch then decides again instead of over-reserving."""
    from certwatch.inventory import quota_stream

    domains = uc.DomainUseCases(event_log, _no_contacts, clock=lambda: NOW)
    (other,) = await domains.add(principal, uc.AddDomains(domains="g.example.test"))
    assert other.domain is not None
    real_load = quota_stream.load
    raced: list[bool] = []

    async def load_then_race(log: EventLog, conn: Conn, account: Any, *, advance: bool = True) -> Any:
        state = await real_load(log, conn, account, advance=advance)
        if not advance and not raced:  # the batch's unlocked read: the enable lands after it
            raced.append(True)
            assert other.domain is not None
            await domains.run(principal, uc.Enable(other.domain.id))
        return state

    monkeypatch.setattr(quota_stream, "load", load_then_race)
    (batch,) = await domains.add(principal, uc.AddDomains(domains="h.example.test", enable=True))
    assert raced == [True]
    assert batch.domain is not None and batch.domain.status == "NOT_ENABLED"
    assert any("quota" in w for w in batch.warnings), batch.warnings
    statuses = {r.host: r.status for r in (await domains.page(principal, uc.ListQuery()))[0]}
    assert statuses == {"g.example.test": "ENABLING", "h.example.test": "NOT_ENABLED"}
    async with event_log.pool.connection() as conn:
        state = await quota_stream.load(event_log, conn, principal.account_id)
    assert (state.purchased_units, state.reserved_units) == (1, 1)


async def _view_status(event_log: EventLog, domain_id: str) -> str | None:
    async with event_log.pool.connection() as conn:
        cur = await conn.execute("SELECT status FROM inventory_domains WHERE domain_id = %s", (domain_id,))
        row = await cur.fetchone()
    return None if row is None else str(row[0])
