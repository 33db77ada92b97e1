"""Per-host certificate facts for the VOD certificate API, from the classifier's verdicts."""

from __future__ import annotations

from certwatch.classifier.events import DOMAIN_CLASSIFIED
from certwatch.platform.eventlog import Conn
from certwatch.platform.events import RecordedEvent
from certwatch.platform.projection import Projection


async def _apply(conn: Conn, event: RecordedEvent) -> None:
    verdict = event.data["verdict"]
    await conn.execute(
        "INSERT INTO vod_cert_facts (account_id, host, domain_id, brand, valid_from, valid_to,"
        " status, checked_at) VALUES (%s, %s, %s, %s, %s, %s, %s, %s)"
        " ON CONFLICT (account_id, host) DO UPDATE SET domain_id = excluded.domain_id,"
        " brand = excluded.brand, valid_from = excluded.valid_from,"
        " valid_to = excluded.valid_to, status = excluded.status, checked_at = excluded.checked_at",
        (event.data["account_id"], verdict["host"], event.data["domain_id"], verdict.get("brand"),
         verdict.get("valid_from"), verdict.get("valid_to"), verdict["status"],
         verdict["checked_at"]),
    )  # fmt: skip


CERT_FACTS = Projection(
    name="vod.cert_facts", event_types=[DOMAIN_CLASSIFIED], handle=_apply,
    reset_sql=["DELETE FROM vod_cert_facts"], subject="cw.events.status.>",
)  # fmt: skip
