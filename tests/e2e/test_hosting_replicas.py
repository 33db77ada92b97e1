"""Two hosting replicas on one database and one NATS, behind one port-80 route that sends
every http-01 validation to the replica that did NOT present the challenge (what a Service in
front of both may do): every instance is issued, with one ACME order each, and no event is in
the log twice. The answers reach the other replica through PostgreSQL (hosting/http01.py);
kept in memory only, every validation fails."""

from __future__ import annotations

import asyncio
import json
import os
import uuid
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field, replace
from typing import Any

import aiohttp
import psycopg
import pytest
from aiohttp import web

from certwatch.cli.main import main
from certwatch.contracts import hosting as hc
from certwatch.contracts.hosting import Validation
from certwatch.hosting import app as hosting_app
from certwatch.hosting.acme_client import Solver
from certwatch.hosting.http01 import Http01Responder
from certwatch.hosting.orchestrator import Orchestrator
from certwatch.platform.config import Settings
from certwatch.platform.localstack import free_port
from certwatch.platform.service import Build, Parts, Runtime, Service
from certwatch.platform.shredding import new_master_key
from certwatch.services import MIGRATIONS
from tests.support.pebble import pebble
from tests.support.stack import new_account, wait_for

INSTANCES = 6  # subscribed and applied for through the two replicas' APIs in turn
NAMES = 2  # per instance: an http-01 validation each


@dataclass
class CrossRoute:
    """Port 80 of every hosted name: a GET for a token goes to the replica that did not present it."""

    responder_ports: tuple[int, int]
    presented_by: dict[str, int] = field(default_factory=dict)  # token -> replica
    answered: int = 0  # GETs the other replica answered (pebble validates each challenge thrice)
    crossed: set[str] = field(default_factory=set)  # tokens it answered

    async def get(self, request: web.Request) -> web.Response:
        by = self.presented_by.get(request.match_info["token"])
        if by is None:
            return web.Response(status=502, text="a token no replica presented")
        other = self.responder_ports[1 - by]
        timeout = aiohttp.ClientTimeout(total=5)
        async with (
            aiohttp.ClientSession(timeout=timeout) as s,
            s.get(f"http://127.0.0.1:{other}{request.path}") as r,
        ):
            body = await r.read()
        if r.status == 200:
            self.answered += 1
            self.crossed.add(request.match_info["token"])
        return web.Response(status=r.status, body=body)


@dataclass
class Noted:
    """A replica's own solver, noting which replica presented each http-01 token for the route."""

    solver: Solver
    route: CrossRoute
    replica: int

    def present(self, method: Validation, domain: str, key: str, value: str) -> None:
        self.route.presented_by[key] = self.replica
        self.solver.present(method, domain, key, value)

    def cleanup(self, method: Validation, domain: str, key: str, value: str) -> None:
        self.solver.cleanup(method, domain, key, value)


@asynccontextmanager
async def serving(route: CrossRoute, port: int) -> AsyncIterator[None]:
    app = web.Application()
    app.router.add_get("/.well-known/acme-challenge/{token}", route.get)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        yield
    finally:
        await runner.cleanup()


def replica(i: int, route: CrossRoute, env: Mapping[str, str], built: list[Parts]) -> Build:
    """hosting's own bootstrap, its responder on replica `i`'s port, its solver `Noted`."""

    async def build(rt: Runtime) -> Parts:
        addr = f"127.0.0.1:{route.responder_ports[i]}"
        parts = await hosting_app.build(rt, {**env, "CERTWATCH_ACME_HTTP01_ADDR": addr})
        (orchestrator,) = [w for w in parts.workers if isinstance(w, Orchestrator)]
        orchestrator.solver = Noted(orchestrator.solver, route, i)
        built.append(parts)
        return parts

    return build


@pytest.mark.slow
@pytest.mark.timeout(240)
async def test_two_hosting_replicas_issue_each_instance_once_validated_by_the_other(
    settings: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    with pebble(nonce_reject_percent=0) as ca:
        env = {**os.environ, "CERTWATCH_ACME_DIRECTORY": ca.directory, "CERTWATCH_ACME_CA_FILE": ca.ca_file,
               "CERTWATCH_HOSTING_POLL_S": "0.2"}  # fmt: skip
        route = CrossRoute((free_port(), free_port()))
        settings = replace(settings, master_key=new_master_key())
        _account, key = await new_account(settings.database_url, f"twins-{uuid.uuid4().hex[:6]}")
        built: list[Parts] = []
        replicas = [
            Service("hosting", settings, replica(i, route, env, built), port=free_port(), migrations=MIGRATIONS)
            for i in range(2)
        ]  # fmt: skip
        async with serving(route, ca.http_port):
            for r in replicas:
                await r.start()
            try:

                async def cli(i: int, *argv: str) -> Any:
                    """The command's JSON, through replica `i % 2`'s API."""
                    server = f"127.0.0.1:{replicas[i % 2].port}"
                    code = await asyncio.to_thread(
                        main, [*argv, "--json", "--api-key", key, "--server", server]
                    )
                    out = capsys.readouterr().out
                    assert code == 0, out
                    return json.loads(out)

                applied: list[str] = []
                for i in range(INSTANCES):
                    first = (await cli(i, "hosting", "subscribe", "--years", "2"))["instances"][0]["id"]
                    names = [f"r{i}-{n}-{uuid.uuid4().hex[:6]}.example.com" for n in range(NAMES)]
                    domains = [a for name in names for a in ("--domain", name)]
                    await cli(i + 1, "hosting", "apply", first, *domains, "--company", "Twins Co",
                              "--contact-email", "ops@example.com")  # fmt: skip
                    applied.append(first)

                async def all_hosted() -> bool:
                    async with await psycopg.AsyncConnection.connect(settings.database_url) as conn:
                        row = await (await conn.execute(
                            "SELECT count(*) FROM hosting_instances WHERE state = %s AND certificate_id IS NOT NULL"
                            " AND instance_id = ANY(%s::uuid[])", (hc.InstanceState.HOSTED.value, applied),
                        )).fetchone()  # fmt: skip
                    return row == (INSTANCES,)

                await wait_for(all_hosted, timeout=60, every=0.2)
            finally:
                await asyncio.gather(*(r.stop() for r in replicas), return_exceptions=True)
        orchestrators = [w for p in built for w in p.workers if isinstance(w, Orchestrator)]
        responders = [w for p in built for w in p.workers if isinstance(w, Http01Responder)]
        async with await psycopg.AsyncConnection.connect(settings.database_url) as conn:
            per_instance = await (await conn.execute(
                "SELECT stream_id, count(*) FROM events WHERE event_type = %s GROUP BY stream_id",
                (hc.OrderPlaced.TYPE,),
            )).fetchall()  # fmt: skip
            failed = await (await conn.execute(
                "SELECT count(*) FROM events WHERE event_type = %s", (hc.OrderFailed.TYPE,)
            )).fetchone()  # fmt: skip
            repeated = await (await conn.execute(
                "SELECT event_type, stream_id, count(*) FROM events GROUP BY event_type, stream_id, data"
                " HAVING count(*) > 1"
            )).fetchall()  # fmt: skip
            left = await (await conn.execute("SELECT count(*) FROM hosting_http01_answers")).fetchone()
        assert sorted(s for s, _ in per_instance) == sorted(hc.stream_id(i) for i in applied)
        assert {n for _, n in per_instance} == {1}  # one OrderPlaced per instance
        placed = [o.orders_placed for o in orchestrators]  # 1 and 5, 5 and 1 in three runs
        assert sum(placed) == INSTANCES, placed  # one newOrder each at the CA
        assert failed == (0,)  # no validation failed, none retried
        assert route.crossed == set(route.presented_by) and len(route.crossed) == INSTANCES * NAMES
        assert sum(r.served_shared for r in responders) == route.answered  # each read from the table
        assert repeated == []  # no event appended twice by the two replicas
        assert left == (0,)  # every answer deleted on cleanup
