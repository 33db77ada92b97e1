"""Expiry of the certificate each monitored endpoint serves, from the classifier's verdicts."""

from __future__ import annotations

from certwatch.contracts.status import STREAM, DomainClassified
from certwatch.platform.eventlog import Conn
from certwatch.platform.projection import of_payloads


async def _apply(conn: Conn, e: DomainClassified) -> None:
    verdict = e.verdict
    await conn.execute(
        "INSERT INTO hosting_observed_expiry (domain_id, account_id, host, port, valid_to, brand,"
        " checked_at) VALUES (%s, %s, %s, %s, %s, %s, %s) ON CONFLICT (domain_id) DO UPDATE SET"
        " valid_to = excluded.valid_to, brand = excluded.brand, checked_at = excluded.checked_at,"
        " host = excluded.host, port = excluded.port",
        (e.domain_id, e.account_id, verdict.host, verdict.port,
         verdict.valid_to, verdict.brand, verdict.checked_at),
    )  # fmt: skip


OBSERVED_EXPIRY = of_payloads(
    "hosting.observed_expiry",
    DomainClassified,
    _apply,
    subject=STREAM.subject,
    reset_sql=["DELETE FROM hosting_observed_expiry"],
)
