"""Probe observations and the content-addressed certificate store against PostgreSQL:
partitions made ahead and dropped past the retention, rows in their day's partition, the
on-disk size of a stable domain's probe, chains and certificates stored once."""

from __future__ import annotations

import asyncio
import logging
import uuid
from datetime import UTC, date, datetime, timedelta
from typing import Any

import orjson
import pytest
from psycopg_pool import AsyncConnectionPool

from certwatch.platform import certificates as certs
from certwatch.platform import observations as obs

TODAY = date(2026, 6, 1)
NOON = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
LEAF, INTERMEDIATE = "aa" * 32, "bb" * 32


def stable(domain_id: uuid.UUID, at: datetime, chain_id: int, ip: str = "192.0.2.10") -> obs.Observation:
    """What a SECURE domain's probe records at one address."""
    return obs.Observation(
        observed_at=at, domain_id=domain_id, ip=ip, phase="done", status="SECURE",
        tls_version="TLSv1.3", connect_ms=0.734, handshake_ms=4.211, chain_id=chain_id,
    )  # fmt: skip


async def test_partitions_are_made_ahead_and_dropped_past_the_retention(
    pool: AsyncConnectionPool[Any],
) -> None:
    async with pool.connection() as conn:
        first = await obs.maintain(conn, today=TODAY - timedelta(days=10), retention_days=5)
        assert first.created[0] == TODAY - timedelta(days=10) and len(first.created) == obs.AHEAD_DAYS + 1
        again = await obs.maintain(conn, today=TODAY - timedelta(days=10), retention_days=5)
        assert again == obs.Maintenance((), ())  # idempotent
        later = await obs.maintain(conn, today=TODAY, retention_days=5)
        days = await obs.partitions(conn)
    # Every day that ended 5 days ago or earlier is gone; today and 7 ahead exist (the two
    # days nobody maintained in are made by the first write that needs them).
    assert later.dropped == tuple(TODAY - timedelta(days=n) for n in range(10, 5, -1))
    assert days == [TODAY + timedelta(days=n) for n in (-5, -4, -3, *range(obs.AHEAD_DAYS + 1))]


async def test_rows_land_in_their_days_partition_even_one_not_made_yet(
    pool: AsyncConnectionPool[Any],
) -> None:
    domain = uuid.uuid4()
    async with pool.connection() as conn:
        await obs.maintain(conn, today=TODAY)
        late = datetime(2026, 5, 31, 23, 59, 59, tzinfo=UTC)  # yesterday: no partition yet
        rows = [stable(domain, late, 7), stable(domain, NOON, 7),
                obs.Observation(NOON + timedelta(minutes=5), domain, None, "dns", "ABNORMAL",
                                causes=("NETWORK_CONNECTION_FAILURE",),
                                primary_cause="NETWORK_CONNECTION_FAILURE", detail="NXDOMAIN")]  # fmt: skip
        assert await obs.write(conn, rows) == 3
        cur = await conn.execute(f"SELECT tableoid::regclass::text, observed_at FROM {obs.TABLE} ORDER BY 2")
        placed = await cur.fetchall()
        back = await obs.read(conn, domain, late, NOON + timedelta(hours=1))
    assert [p[0] for p in placed] == [obs.partition_name(date(2026, 5, 31)), *[obs.partition_name(TODAY)] * 2]
    assert back == rows  # every field round-trips (timings in whole microseconds)


async def test_codes_round_trip_most_important_cause_first() -> None:
    row = obs.Observation(
        NOON, uuid.uuid4(), "2001:db8::1", "done", "ABNORMAL",
        causes=("EXPIRED", "CHAIN_VALIDATION_FAILED", "CERTIFICATE_MISMATCH"), primary_cause="EXPIRED",
        tls_version="TLSv1.2", chain_id=-5,
    )  # fmt: skip
    assert obs.decode(obs.encode(row)) == row
    with pytest.raises(ValueError, match="status: 'GREEN' is not in the observation vocabulary"):
        obs.encode(obs.Observation(NOON, uuid.uuid4(), None, "dns", "GREEN"))


def test_a_probe_packs_into_a_small_message_and_back() -> None:
    domain = uuid.uuid4()
    probe = [stable(domain, NOON, certs.chain_id([LEAF, INTERMEDIATE])),
             stable(domain, NOON, certs.chain_id([LEAF]), ip="2001:db8::1")]  # fmt: skip
    body = obs.pack(probe)
    assert obs.unpack(orjson.loads(orjson.dumps(body))) == probe
    assert len(orjson.dumps(obs.pack(probe[:1]))) < 200


def test_every_status_and_cause_of_the_classifier_has_a_code() -> None:
    from certwatch.rules.causes import Status
    from certwatch.rules.precedence import PRECEDENCE

    assert {s.value for s in Status} - {Status.ENABLING.value} <= set(obs.STATUSES)
    assert tuple(c.value for c in PRECEDENCE) == obs.CAUSES  # a mask decodes most important first


async def test_maintainers_on_many_replicas_agree(pool: AsyncConnectionPool[Any]) -> None:
    workers = [obs.ObservationMaintainer(pool, retention_days=30, clock=lambda: NOON) for _ in range(4)]
    results = await asyncio.gather(*(w.run_once() for w in workers))
    created = [day for r in results for day in r.created]
    assert sorted(created) == [TODAY + timedelta(days=n) for n in range(obs.AHEAD_DAYS + 1)]  # once each


async def test_the_worker_runs_until_stopped(
    pool: AsyncConnectionPool[Any], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="certwatch.platform.observations")  # as services log
    worker = obs.ObservationMaintainer(pool, clock=lambda: NOON, interval_s=3600)
    task = asyncio.create_task(worker.run())
    async with asyncio.timeout(10):
        while worker.last is None:
            await asyncio.sleep(0.01)
    worker.stop()
    await asyncio.wait_for(task, 5)
    assert worker.last.created and not worker.failing
    [record] = [r for r in caplog.records if r.msg.startswith("observation partitions")]
    assert record.partitions_created == [str(d) for d in worker.last.created]  # type: ignore[attr-defined]


async def test_a_stable_domains_probe_takes_at_most_200_bytes_on_disk(pool: AsyncConnectionPool[Any]) -> None:
    """100,000 probes of 1,000 domains (one address each) over one day, written in COPY
    batches as a prober would flush them; heap, index and TOAST of every partition."""
    domains = [uuid.uuid4() for _ in range(1000)]
    chain = certs.chain_id([LEAF, INTERMEDIATE])
    async with pool.connection() as conn:
        await obs.maintain(conn, today=TODAY)
        empty = await obs.bytes_on_disk(conn)
        start = datetime(2026, 6, 1, tzinfo=UTC)
        for probe_round in range(100):
            at = start + timedelta(seconds=probe_round * 300)
            await obs.write(
                conn, [stable(d, at + timedelta(milliseconds=i), chain) for i, d in enumerate(domains)]
            )
        await conn.execute(f"VACUUM ANALYZE {obs.TABLE}")
        per_probe = (await obs.bytes_on_disk(conn) - empty) / 100_000
    print(f"{per_probe:.1f} bytes a probe")
    assert per_probe <= 200, f"{per_probe:.0f} bytes a probe"


async def test_certificates_and_chains_are_stored_once(pool: AsyncConnectionPool[Any]) -> None:
    leaf = certs.StoredCertificate(LEAF, {"subject": "CN=www.example.test"})
    with_der = certs.StoredCertificate(LEAF, {"subject": "CN=www.example.test"}, der=b"\x30\x03\x02\x01\x01")
    inter = certs.StoredCertificate(INTERMEDIATE, {"subject": "CN=Example Issuing"}, der=b"\x30\x00")
    async with pool.connection() as conn:
        await certs.put_certificates(conn, [leaf, inter])
        await certs.put_certificates(conn, [with_der, inter])  # the DER arrives later
        ids = await certs.put_chains(conn, [[LEAF, INTERMEDIATE], [LEAF], [LEAF, INTERMEDIATE]])
        assert await certs.put_chains(conn, [[LEAF, INTERMEDIATE]]) == ids[:1]
        chains = await certs.get_chains(conn, [*ids, certs.NO_CHAIN])
        stored = await certs.get_certificates(conn, [LEAF, INTERMEDIATE, "cc" * 32])
        cur = await conn.execute("SELECT (SELECT count(*) FROM chains), (SELECT count(*) FROM certificates)")
        counts = await cur.fetchone()
    assert ids[0] == ids[2] == certs.chain_id([LEAF, INTERMEDIATE]) and ids[0] != ids[1]
    assert chains == {ids[0]: (LEAF, INTERMEDIATE), ids[1]: (LEAF,)}
    assert stored[LEAF].der == with_der.der and stored[INTERMEDIATE].facts == inter.facts
    assert stored[LEAF].pem() == "-----BEGIN CERTIFICATE-----\nMAMCAQE=\n-----END CERTIFICATE-----\n"
    assert counts == (2, 2)


async def test_a_chain_id_taken_by_another_chain_is_refused(pool: AsyncConnectionPool[Any]) -> None:
    chain_id = certs.chain_id([LEAF])
    async with pool.connection() as conn:
        await conn.execute(
            "INSERT INTO chains VALUES (%s, %s, ARRAY[%s::bytea])",
            (chain_id, b"\x01" * 32, bytes.fromhex(LEAF)),
        )
        with pytest.raises(certs.ChainIdCollision, match="taken by other chains"):
            await certs.put_chains(conn, [[LEAF]])
