"""Expiry of the certificate each monitored endpoint serves, from the classifier's verdicts.

A page is written with one upsert: each domain's last verdict in it, under the account of
its first (an existing row keeps its own). A statement per verdict was most of this
service's CPU at 10,000 domains (10,001 statements a run of bench/enable_at_scale)."""

from __future__ import annotations

from collections.abc import Sequence

from certwatch.contracts.status import DOMAIN_CLASSIFIED, STREAM, DomainClassified
from certwatch.platform.eventlog import Conn
from certwatch.platform.events import RecordedEvent
from certwatch.platform.projection import Projection


async def _apply(conn: Conn, events: Sequence[RecordedEvent]) -> None:
    last: dict[str, DomainClassified] = {}
    account: dict[str, str] = {}
    for event in events:
        e = DomainClassified.of(event)
        last[e.domain_id] = e
        account.setdefault(e.domain_id, e.account_id)
    verdicts = list(last.values())
    await conn.execute(
        "INSERT INTO hosting_observed_expiry (domain_id, account_id, host, port, valid_to, brand, checked_at)"
        " SELECT * FROM unnest(%b::uuid[], %b::uuid[], %b::text[], %b::int4[], %b::timestamptz[], %b::text[],"
        " %b::timestamptz[]) ON CONFLICT (domain_id) DO UPDATE SET valid_to = excluded.valid_to,"
        " brand = excluded.brand, checked_at = excluded.checked_at, host = excluded.host, port = excluded.port",
        ([e.domain_id for e in verdicts], [account[e.domain_id] for e in verdicts],
         [e.verdict.host for e in verdicts], [e.verdict.port for e in verdicts],
         [e.verdict.valid_to for e in verdicts], [e.verdict.brand for e in verdicts],
         [e.verdict.checked_at for e in verdicts]),
    )  # fmt: skip


OBSERVED_EXPIRY = Projection(
    name="hosting.observed_expiry",
    event_types=[DOMAIN_CLASSIFIED],
    handle_batch=_apply,
    subject=STREAM.subject,
    reset_sql=["DELETE FROM hosting_observed_expiry"],
)
