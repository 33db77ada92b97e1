"""Issue 10 B through the running services: a stable domain's probes are observations
(rows, a moving last check), not events; a broken server appends its verdict, repeats it
up to the streak limit, then nothing more until it changes again."""

from __future__ import annotations

import uuid
from collections import Counter
from dataclasses import replace

from certwatch.contracts import status as sc
from certwatch.platform.config import Settings
from certwatch.platform.eventlog import EventLog
from certwatch.platform.localstack import free_port
from certwatch.v1 import inventory_pb2 as pb
from certwatch.v1 import inventory_pb2_grpc
from tests.support.pki import TestPKI
from tests.support.stack import running_stack, wait_for
from tests.support.tls_server import server_context, tls_server

DOMAINS = 12


async def _verdicts(log: EventLog) -> Counter[str]:
    events = await log.read_all(limit=100_000, types=[sc.DOMAIN_CLASSIFIED])
    return Counter(e.data["domain_id"] for e in events)


async def _probe_streams(log: EventLog) -> int:
    return sum(1 for e in await log.read_all(limit=100_000) if e.stream_id.startswith("probe-"))


async def _observations(log: EventLog) -> Counter[str]:
    async with log.pool.connection() as conn:
        cur = await conn.execute("SELECT domain_id::text, count(*) FROM probe_observations GROUP BY 1")
        return Counter({r[0]: r[1] for r in await cur.fetchall()})


async def test_stable_domains_add_no_events_and_a_failure_is_appended_a_bounded_number_of_times(
    settings: Settings, pki: TestPKI
) -> None:
    files = pki.server_files(pki.leaf("flow.test", dns=("*.flow.test",)))
    down_port = free_port()
    with tls_server(server_context(*files)) as port:
        hosts = [f"d{i}.flow.test" for i in range(DOMAINS)]
        fast = replace(settings, probe_interval_s=0.5, probe_jitter_s=0, probe_connect_timeout_s=0.5,
                       resolve_overrides=tuple(f"{h}:{p}:127.0.0.1" for h in [*hosts, "down.flow.test"]
                                               for p in (port, down_port)))  # fmt: skip
        async with running_stack(fast) as stack, stack.channel("inventory") as channel:
            inventory = inventory_pb2_grpc.InventoryStub(channel)
            await inventory.AddDomains(
                pb.AddDomainsRequest(domains=",".join(f"{h}:{port}" for h in hosts), enable=True),
                metadata=stack.metadata,
            )
            log = stack.services["classifier"].runtime.event_log  # type: ignore[union-attr]

            async def rounds(n: int) -> Counter[str] | None:
                seen = await _observations(log)
                return seen if len(seen) == DOMAINS and min(seen.values()) >= n else None

            await wait_for(lambda: rounds(6), timeout=60, every=0.3)
            verdicts = await _verdicts(log)
            assert len(verdicts) == DOMAINS and set(verdicts.values()) == {1}, (
                verdicts
            )  # the enable check only
            assert await _probe_streams(log) == 0  # no ProbeCompleted any more
            listed = await inventory.ListDomains(pb.ListDomainsRequest(), metadata=stack.metadata)
            assert {d.status for d in listed.domains} == {"SECURE"} and not any(
                d.stale for d in listed.domains
            )
            async with log.pool.connection() as conn:
                cur = await conn.execute(
                    "SELECT min(observed_at) > now() - interval '3 seconds' FROM probe_latest"
                )
                assert (await cur.fetchone()) == (True,)  # last check moves with every probe

            # A server that refuses: enable fails first (its own verdict), so break one that worked.
            [broken] = (await inventory.AddDomains(
                pb.AddDomainsRequest(domains=f"down.flow.test:{port}", enable=True), metadata=stack.metadata,
            )).results  # fmt: skip
            domain_id = broken.domain.id

            async def secure() -> bool:
                got = await inventory.GetDomain(pb.GetDomainRequest(id=domain_id), metadata=stack.metadata)
                return got.status == "SECURE"

            await wait_for(secure, timeout=30, every=0.2)
            await inventory.EditDomain(
                pb.EditDomainRequest(id=domain_id, port=down_port), metadata=stack.metadata
            )

            async def observed_failing(n: int) -> bool:
                async with log.pool.connection() as conn:
                    cur = await conn.execute(
                        "SELECT count(*) FROM probe_observations WHERE domain_id = %s AND status = 2",
                        (uuid.UUID(domain_id),),
                    )
                    row = await cur.fetchone()
                return row is not None and row[0] >= n

            await wait_for(lambda: observed_failing(9), timeout=60, every=0.3)
            events = [
                e for e in await log.read_stream(sc.stream_id(domain_id)) if e.type == sc.DOMAIN_CLASSIFIED
            ]
            failing = [sc.DomainClassified.from_data(e.data) for e in events]
            failing = [c for c in failing if c.verdict.status.value == "ABNORMAL"]
            assert [c.streak for c in failing] == [1, 2, 3, 4, 5], [c.streak for c in failing]
            got = await inventory.GetDomain(pb.GetDomainRequest(id=domain_id), metadata=stack.metadata)
            assert got.status == "ABNORMAL" and got.primary_cause == failing[0].verdict.primary_cause
