"""The expiry gauges' sample: endpoints by days to expiry, hosted when a current hosted
certificate of the same account names the host; the soonest expiry over every endpoint; and
days to expiry by domain for the N soonest only."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from psycopg_pool import AsyncConnectionPool

from certwatch.hosting.metrics import ExpirySampler, expiring
from tests.support.metric_reader import totals


async def _endpoint(
    conn: Any, account: uuid.UUID, host: str, valid_to: datetime | None, port: int = 443
) -> None:
    await conn.execute(
        "INSERT INTO hosting_observed_expiry (domain_id, account_id, host, port, valid_to, checked_at)"
        " VALUES (%s, %s, %s, %s, %s, now())",
        (uuid.uuid4(), account, host, port, valid_to),
    )


async def _hosted(conn: Any, account: uuid.UUID, names: list[str], state: str) -> None:
    instance, certificate = uuid.uuid4(), uuid.uuid4()
    await conn.execute(
        "INSERT INTO hosting_instances (instance_id, account_id, subscription_id, year, years, state, version,"
        " certificate_id) VALUES (%s, %s, %s, 1, 1, %s, 1, %s)",
        (instance, account, uuid.uuid4(), state, certificate),
    )  # fmt: skip
    await conn.execute(
        "INSERT INTO hosting_certificates (certificate_id, account_id, instance_id, serial, not_before, not_after,"
        " names, issuer, cert_pem, chain_pem, sealed_key, uploaded, recorded_at)"
        " VALUES (%s, %s, %s, '01', now(), now() + interval '90 days', %s, 'CA', '', '', '', false, now())",
        (certificate, account, instance, names),
    )  # fmt: skip


async def test_endpoints_are_counted_by_bucket_and_hosting(pool: AsyncConnectionPool[Any]) -> None:
    now = datetime.now(UTC)
    mine, other = uuid.uuid4(), uuid.uuid4()
    async with pool.connection() as conn, conn.transaction():
        await _endpoint(conn, mine, "gone.example", now - timedelta(days=1))
        await _endpoint(conn, mine, "soon.example", now + timedelta(days=3))
        await _endpoint(conn, mine, "hosted.example", now + timedelta(days=5))
        await _endpoint(conn, mine, "ended.example", now + timedelta(days=10))
        await _endpoint(conn, mine, "month.example", now + timedelta(days=20))
        await _endpoint(conn, mine, "later.example", now + timedelta(days=60))
        await _hosted(conn, mine, ["hosted.example", "www.hosted.example"], "HOSTED")
        await _hosted(conn, mine, ["ended.example"], "ENDED")  # no longer renewed
        await _hosted(conn, other, ["soon.example"], "HOSTED")  # another account's: not this endpoint's
        counts, earliest = await expiring(conn)
    assert counts == {
        ("expired", False): 1,
        ("7", False): 1,
        ("7", True): 1,
        ("14", False): 1,
        ("30", False): 1,
    }
    assert earliest is not None and -1.01 < earliest < -0.99


def _days_by_domain() -> dict[str, float]:
    return {dict(a)["domain"]: round(v) for a, v in totals("certwatch.certificate.days_to_expiry").items()}


async def test_days_to_expiry_by_domain_for_the_soonest_only(pool: AsyncConnectionPool[Any]) -> None:
    now = datetime.now(UTC)
    account = uuid.uuid4()
    async with pool.connection() as conn:
        for days in (40, 3, 90, -2, 15, 200):
            await _endpoint(conn, account, f"d{days}.example", now + timedelta(days=days, minutes=1))
        await _endpoint(
            conn, account, "d3.example", now + timedelta(days=5)
        )  # the same name again: its soonest
        await _endpoint(conn, account, "alt.example", now + timedelta(days=10, minutes=1), port=8443)
        await _endpoint(conn, account, "unknown.example", None)  # never served a certificate
    sampler = ExpirySampler(pool, domains=4)
    await sampler.sample()
    # The 4 soonest endpoints are d-2, d3, d3 again and alt:8443: three domains, no more.
    assert _days_by_domain() == {"d-2.example": -2, "d3.example": 3, "alt.example:8443": 10}

    async with pool.connection() as conn:  # d-2 renewed: it leaves the soonest, d15 comes in
        await conn.execute(
            "UPDATE hosting_observed_expiry SET valid_to = now() + interval '300 days' WHERE host = 'd-2.example'"
        )
    await sampler.sample()
    assert _days_by_domain() == {"d3.example": 3, "alt.example:8443": 10, "d15.example": 15}
