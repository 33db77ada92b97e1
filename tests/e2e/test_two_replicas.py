"""Two replicas of every service at once, on one database and one NATS: each piece of work
is done once. Domains are added through both inventories; every domain gets one probe (one
observation row: the probers claim with SKIP LOCKED, the classifiers share one durable
consumer) and one verdict (projections lock their checkpoint, the relay is one leader), no
event is in the log twice, and every projection equals its rebuild. Both consoles serve the
signed-in pages from the shared APIs, and a domain added through either is added once.
"""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import replace

import grpc
import httpx
import psycopg
import pytest

from certwatch.console import users
from certwatch.contracts import status as sc
from certwatch.platform.config import Settings
from certwatch.platform.localstack import free_port
from certwatch.platform.service import Service
from certwatch.services import MIGRATIONS, PORTS, build_for
from certwatch.v1 import inventory_pb2 as pb
from certwatch.v1 import inventory_pb2_grpc
from tests.support.pki import TestPKI
from tests.support.settled import assert_rebuilds_equal_live, assert_settled
from tests.support.stack import running_stack
from tests.support.tls_server import server_context, tls_server

DOMAINS = 40
EXTRAS = ("extra-a.twins.test", "extra-b.twins.test")  # one added through each console
PASSWORD = "two consoles, one password"


async def _console_adds(base: str, username: str, host: str, port: int, *, listed: str) -> None:
    """Sign in to the console at `base`, see `listed` on its domain page, add `host:port` there.

    A session is opened on each replica (sessions may live in memory or in the database: a
    request signed into one replica is not assumed valid on the other)."""
    async with httpx.AsyncClient(base_url=base, timeout=30) as client:
        signed = await client.post("/signin", data={"username": username, "password": PASSWORD})
        assert signed.status_code == 303, signed.text
        me = {"cookie": f"certwatch_session={signed.cookies['certwatch_session']}"}
        page = await client.get("/domains", params={"q": listed}, headers=me)
        assert page.status_code == 200 and listed in page.text
        same = {**me, "sec-fetch-site": "same-origin", "origin": base}
        added = await client.post(
            "/domains/new", headers=same, data={"domains": f"{host}:{port}", "enable": "on"}
        )
        assert added.status_code == 200 and 'class="added"' in added.text, added.text


@pytest.mark.slow
@pytest.mark.timeout(300)
async def test_two_replicas_of_every_service_do_each_piece_of_work_once(
    settings: Settings, pki: TestPKI
) -> None:
    files = pki.server_files(pki.leaf("*.twins.test", dns=("*.twins.test",), org="Twins Org"))
    hosts = [f"d{i:03d}.twins.test" for i in range(DOMAINS)]
    with tls_server(server_context(*files)) as port:
        resolve = tuple(f"{h}:{port}:127.0.0.1" for h in [*hosts, *EXTRAS])
        async with running_stack(replace(settings, resolve_overrides=resolve)) as stack:
            twin_settings = replace(stack.settings, grpc_ports={name: free_port() for name in PORTS},
                                    vod_http_port=free_port())  # fmt: skip
            twins = [Service(n, twin_settings, build_for(n), migrations=MIGRATIONS) for n in PORTS]
            for twin in twins:
                await twin.start()
            try:
                targets = [f"127.0.0.1:{stack.services['inventory'].port}", f"127.0.0.1:{twins[0].port}"]
                assert twins[0].name == "inventory"

                async def add(i: int, target: str) -> None:
                    async with grpc.aio.insecure_channel(target) as channel:
                        half = hosts[i::2]
                        added = await inventory_pb2_grpc.InventoryStub(channel).AddDomains(
                            pb.AddDomainsRequest(domains=",".join(f"{h}:{port}" for h in half), enable=True),
                            metadata=stack.metadata, timeout=30,
                        )  # fmt: skip
                        assert all(r.added for r in added.results), added

                await asyncio.gather(*(add(i, t) for i, t in enumerate(targets)))
                seen = await assert_settled(stack, hosts, timeout=60)
                assert set(seen.values()) == {"SECURE"}, seen

                consoles = [stack.services["console"], next(t for t in twins if t.name == "console")]
                runtime = consoles[0].runtime
                assert runtime is not None
                user = await users.add_user(runtime.pool, uuid.UUID(stack.account_id), "twins", PASSWORD)
                await asyncio.gather(*(
                    _console_adds(f"http://127.0.0.1:{c.port}", user.username, extra, port, listed=hosts[-1 - i])
                    for i, (c, extra) in enumerate(zip(consoles, EXTRAS, strict=True))
                ))  # fmt: skip
                seen = await assert_settled(stack, [*hosts, *EXTRAS], timeout=60)
                assert set(seen.values()) == {"SECURE"}, seen
            finally:
                await asyncio.gather(*(t.stop() for t in twins), return_exceptions=True)
        async with await psycopg.AsyncConnection.connect(settings.database_url) as conn:
            verdicts = await (await conn.execute(
                "SELECT count(*) FROM events WHERE event_type = %s", (sc.DOMAIN_CLASSIFIED,)
            )).fetchone()  # fmt: skip
            probes = await (await conn.execute(
                "SELECT domain_id, count(*) FROM probe_observations GROUP BY domain_id"
            )).fetchall()  # fmt: skip
            repeated = await (await conn.execute(
                "SELECT event_type, stream_id, count(*) FROM events GROUP BY event_type, stream_id, data"
                " HAVING count(*) > 1"
            )).fetchall()  # fmt: skip
        assert verdicts == (DOMAINS + len(EXTRAS),)  # one verdict each (the first check's)
        assert len(probes) == DOMAINS + len(EXTRAS) and {n for _, n in probes} == {
            1
        }  # one probe each, stored once
        assert repeated == []  # no event appended twice by two replicas doing the same work
        await assert_rebuilds_equal_live(settings.database_url)
