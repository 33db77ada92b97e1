"""Per-host certificate facts for the VOD certificate API, from the classifier's verdicts."""

from __future__ import annotations

from certwatch.contracts.status import STREAM, DomainClassified
from certwatch.platform.eventlog import Conn
from certwatch.platform.projection import of_payloads


async def _apply(conn: Conn, e: DomainClassified) -> None:
    verdict = e.verdict
    await conn.execute(
        "INSERT INTO vod_cert_facts (account_id, host, domain_id, brand, valid_from, valid_to,"
        " status, checked_at) VALUES (%s, %s, %s, %s, %s, %s, %s, %s)"
        " ON CONFLICT (account_id, host) DO UPDATE SET domain_id = excluded.domain_id,"
        " brand = excluded.brand, valid_from = excluded.valid_from,"
        " valid_to = excluded.valid_to, status = excluded.status, checked_at = excluded.checked_at",
        (e.account_id, verdict.host, e.domain_id, verdict.brand,
         verdict.valid_from, verdict.valid_to, verdict.status,
         verdict.checked_at),
    )  # fmt: skip


CERT_FACTS = of_payloads(
    "vod.cert_facts",
    DomainClassified,
    _apply,
    subject=STREAM.subject,
    reset_sql=["DELETE FROM vod_cert_facts"],
)
