"""Issuances a minute through the hosting orchestrator vs certbot's `acme` client driven bare.

Run alone: `.venv/bin/python -m bench.hosting_acme` (from the repo root; imports tests.support;
needs Debian's pebble). One pebble (`PEBBLE_VA_NOSLEEP=1`, no nonce rejections, so both
sides do the same number of requests) and one fresh PostgreSQL serve both sides; the same
http-01 responder (certwatch's own) answers both; interleaved rounds of ROUND issuances
each, one at a time:
- reference: `ClientV2` with one registered account: new key + CSR, `new_order`,
  `answer_challenge`, `poll_and_finalize`: what the orchestrator adds nothing to;
- measured: the orchestrator issuing one instance at a time (subscribe + apply, then
  `run_due` until HOSTED): the events before and after each CA call, the key sealed, the
  account looked up and the directory fetched per order, the ARI check;
- and its CPU per renewal (this process's CPU time, threads included; pebble is a process
  of its own), renewals driven by the injected clock, beside the bare client's CPU per
  issuance.

Two runs (2026-12-02, shared 2-core VM, 3 rounds of 8): 36.3 and 38.6 issuances a minute
against 36.6 and 40.4 bare (wall time is the CA's: the library polls a pending
authorization once a second, on both sides); CPU 36-41 ms per issuance and 32-37 ms per
renewal in the orchestrator's process against 18-20 ms for the bare client (the difference:
sealing, the events and rows around each step, the account lookup and directory fetch per
order, the ARI check). With the hosting tables a projection (each step waits for it, the
page folding the instance's stream), two runs at load 3-7: 39.5 and 41.3 a minute against
43.9 and 38.9 bare; CPU 48.3 and 42.8 ms per issuance, 37.5 and 37.1 ms per renewal.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from acme import challenges, client, messages
from josepy.jwa import ES256

from bench._common import Row, bounded, cli, fresh_servers, save
from certwatch.contracts.hosting import KeyType, Validation
from certwatch.hosting.acme_client import CaConfig, account_jwk
from certwatch.hosting.cert_material import csr_pem, new_key_pem
from certwatch.hosting.challenges import Solvers
from certwatch.hosting.http01 import Http01Responder
from certwatch.hosting.orchestrator import Orchestrator
from certwatch.hosting.use_cases import HostingUseCases
from certwatch.platform import auth, db
from certwatch.platform.eventlog import EventLog
from certwatch.platform.shredding import Vault, new_master_key, parse_master_key
from certwatch.services import MIGRATIONS
from tests.support.pebble import pebble

BENCH = "hosting_acme"
ROUNDS = 3
ROUND = 8  # issuances per phase per round
RENEWALS = 12
TIMEOUT_S = 600.0
LIFETIME = timedelta(days=90)  # renewals come due at 60 days, inside the instance's year


def _bare_issue(acme: client.ClientV2, key: Any, responder: Http01Responder) -> None:
    csr = csr_pem(new_key_pem(KeyType.EC256), [f"b{uuid.uuid4().hex[:10]}.example.com"])
    order = acme.new_order(csr)
    for authz in order.authorizations:
        challb = next(c for c in authz.body.challenges if isinstance(c.chall, challenges.HTTP01))
        response, validation = challb.response_and_validation(key)
        responder.put(challb.chall.encode("token"), validation)
        acme.answer_challenge(challb, response)
    acme.poll_and_finalize(order)


def _bare_client(directory: str, ca_file: str) -> tuple[client.ClientV2, Any]:
    key = account_jwk(new_key_pem(KeyType.EC256))
    net = client.ClientNetwork(key, alg=ES256, verify_ssl=ca_file)  # type: ignore[arg-type]  # a CA bundle path
    acme = client.ClientV2(client.ClientV2.get_directory(directory, net), net)
    acme.new_account(
        messages.NewRegistration.from_data(email="bench@example.com", terms_of_service_agreed=True)
    )
    return acme, key


class _Clock:
    def __init__(self) -> None:
        self.now = datetime.now(UTC)

    def __call__(self) -> datetime:
        return self.now


async def run() -> list[Row]:
    with (
        fresh_servers(BENCH) as (pg, _nats),
        pebble(nonce_reject_percent=0, validity_s=int(LIFETIME.total_seconds())) as ca,
    ):
        pool = await db.open_pool(pg.url, max_size=10, migrate=MIGRATIONS)
        responder = Http01Responder(pool, "127.0.0.1", ca.http_port)
        await responder.start()
        try:
            async with bounded(TIMEOUT_S, BENCH):
                return await _measure(pool, ca, responder)
        finally:
            await responder.close()
            await pool.close()


async def _measure(pool: Any, ca: Any, responder: Http01Responder) -> list[Row]:
    log = EventLog(pool)
    vault = Vault(parse_master_key(new_master_key()))
    clock = _Clock()
    orchestrator = Orchestrator(
        log, vault, CaConfig(ca.directory, ca.ca_file), Solvers(responder), clock=clock
    )
    uc = HostingUseCases(log, vault, clock=clock)
    account = str((await auth.create_account(pool, "bench"))[0])
    bare, bare_key = await asyncio.to_thread(_bare_client, ca.directory, ca.ca_file)
    hosted: list[str] = []

    async def orchestrated() -> None:
        _sub, instances = await uc.subscribe(account, 2, "bench")
        name = f"o{uuid.uuid4().hex[:10]}.example.com"
        await uc.apply(account, instances[0].instance_id, [name], "ec256", "Bench", "bench@example.com",
                       Validation.HTTP_01.value, "bench")  # fmt: skip
        while await orchestrator.run_due(limit=1):
            pass
        hosted.append(instances[0].instance_id)

    timings: dict[str, list[tuple[float, float]]] = {"bare": [], "orchestrator": []}
    await orchestrated()  # warm-up: the ACME account is registered here
    await asyncio.to_thread(_bare_issue, bare, bare_key, responder)
    for _ in range(ROUNDS):
        for phase in ("bare", "orchestrator"):
            cpu, wall = time.process_time(), time.perf_counter()
            for _ in range(ROUND):
                if phase == "bare":
                    await asyncio.to_thread(_bare_issue, bare, bare_key, responder)
                else:
                    await orchestrated()
            timings[phase].append((time.perf_counter() - wall, time.process_time() - cpu))
    # Renewals: every hosted instance comes due (injected clock), renewed one at a time.
    clock.now += LIFETIME * 2 / 3 + timedelta(days=1)
    issued_before = await _issued(pool)
    cpu, wall = time.process_time(), time.perf_counter()
    renewed = 0
    while renewed < RENEWALS and await orchestrator.run_due(limit=1):
        renewed = await _issued(pool) - issued_before
    renew_wall, renew_cpu = time.perf_counter() - wall, time.process_time() - cpu
    if renewed < RENEWALS:
        raise RuntimeError(f"only {renewed} of {RENEWALS} renewals happened")

    def per_minute(phase: str) -> float:
        return 60 * ROUND * len(timings[phase]) / sum(w for w, _ in timings[phase])

    def cpu_ms(phase: str) -> float:
        return 1000 * sum(c for _, c in timings[phase]) / (ROUND * len(timings[phase]))

    ref = "bare acme ClientV2, same pebble and responder"
    rows = [
        Row(BENCH, "issuances a minute, one at a time (orchestrator)", per_minute("orchestrator"), "/min", ref,
            per_minute("bare"), "ratio", 0.5),
        Row(BENCH, "CPU per issuance (orchestrator process)", cpu_ms("orchestrator"), "ms", ref, cpu_ms("bare")),
        Row(BENCH, "CPU per renewal (orchestrator process)", 1000 * renew_cpu / renewed, "ms", ref, cpu_ms("bare")),
        Row(BENCH, "renewals a minute, one at a time", 60 * renewed / renew_wall, "/min", ref, per_minute("bare")),
    ]  # fmt: skip
    save(BENCH, rows, {"rounds": ROUNDS, "per_round": ROUND, "renewals": renewed, "pebble": "2.4.0 NOSLEEP",
                       "timings": timings})  # fmt: skip
    return rows


async def _issued(pool: Any) -> int:
    async with pool.connection() as conn:
        cur = await conn.execute("SELECT count(*) FROM hosting_certificates")
        row = await cur.fetchone()
    return int(row[0])


if __name__ == "__main__":
    cli(BENCH, run)
