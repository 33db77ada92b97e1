"""Enabling 10,000 domains in batches of 500 until every one has a verdict, full stack.

Run alone: `.venv/bin/python -m bench.enable_at_scale` (from the repo root; imports tests.support).

All six services run as their own processes, as under `make run`
(tests.support.process_stack), against freshly started PostgreSQL (durable) and NATS; the targets are names on one nginx with a wildcard
certificate, resolved by a DNS server on loopback. AddDomains(enable=True) is called with 500 targets at a time, as fast as it
answers, and the clock stops when no domain is ENABLING any more. Meanwhile a side loop
enables and disables 40 other domains, one RPC at a time, for the latency of
EnableMonitoring and DisableMonitoring under that load.
Reference, in the same run: the bare probes of the same 10,000 targets at the prober's
concurrency (`certwatch.prober.tls_probe.probe`, same ProbeOptions): what the probing
alone costs, with no log, bus, classifier or projections.
"""

from __future__ import annotations

import asyncio
import ipaddress
import time
from typing import Any

import psycopg

from bench._common import Row, bounded, cli, cpu_by_process, fresh_servers, median, percentile, save
from certwatch.platform.config import Settings
from certwatch.prober.settings import probe_options
from certwatch.prober.tls_probe import probe

BENCH = "enable_at_scale"
DOMAINS = 10_000
BATCH = 500
TOGGLED = 40
TIMEOUT_S = 300.0
TARGET_S = 15.0
TOGGLE_P50_TARGET_S = 0.025
# The wait's own count of ENABLING rows is a scan of the view: polled every 0.1 s it was 3.6 s of
# PostgreSQL's time in a run (pg_stat_statements), measured as the system's.
POLL_S = 0.5


async def _pending(url: str) -> int:
    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
        cur = await conn.execute(
            "SELECT count(*) FROM inventory_domains WHERE enabled AND status = 'ENABLING'"
        )
        row = await cur.fetchone()
    assert row is not None
    return int(row[0])


async def _toggle(
    inventory: Any, pb: Any, metadata: Any, ids: list[str], stop: asyncio.Event
) -> dict[str, list[float]]:
    """Enable and disable the side domains one RPC at a time until `stop`."""
    lat: dict[str, list[float]] = {"enable": [], "disable": []}
    for n in range(100_000):
        if stop.is_set():
            break
        domain_id = ids[n % len(ids)]
        for name, rpc in (("enable", inventory.EnableMonitoring), ("disable", inventory.DisableMonitoring)):
            t0 = time.perf_counter()
            await rpc(pb.DomainRef(id=domain_id), metadata=metadata, timeout=30)
            lat[name].append(time.perf_counter() - t0)
    return lat


async def _run_stack(settings: Settings, hosts: list[str], port: int) -> dict[str, Any]:
    from certwatch.v1 import inventory_pb2 as pb
    from certwatch.v1 import inventory_pb2_grpc
    from tests.support.process_stack import process_stack

    async with (
        process_stack(settings, units=DOMAINS + TOGGLED + 10) as stack,
        stack.channel("inventory") as channel,
    ):
        inventory = inventory_pb2_grpc.InventoryStub(channel)
        side = await inventory.AddDomains(
            pb.AddDomainsRequest(domains=",".join(f"side{i}.bench.test:{port}" for i in range(TOGGLED))),
            metadata=stack.metadata, timeout=60,
        )  # fmt: skip
        side_ids = [r.domain.id for r in side.results]
        stop = asyncio.Event()
        toggler = asyncio.create_task(_toggle(inventory, pb, stack.metadata, side_ids, stop))
        add_lat: list[float] = []
        cpu_before = cpu_by_process()
        async with bounded(TIMEOUT_S, f"{DOMAINS} verdicts"):
            t0 = time.perf_counter()
            for start in range(0, len(hosts), BATCH):
                chunk = ",".join(f"{h}:{port}" for h in hosts[start : start + BATCH])
                a0 = time.perf_counter()
                added = await inventory.AddDomains(
                    pb.AddDomainsRequest(domains=chunk, enable=True), metadata=stack.metadata, timeout=120
                )
                add_lat.append(time.perf_counter() - a0)
                refused = [r.error for r in added.results if not r.added]
                if refused:
                    raise RuntimeError(f"AddDomains refused {len(refused)}: {refused[:3]}")
            accepted = time.perf_counter() - t0
            for _ in range(int(TIMEOUT_S / POLL_S)):
                if await _pending(settings.database_url) == 0:
                    break
                await asyncio.sleep(POLL_S)
            wall = time.perf_counter() - t0
        cpu = {k: v - cpu_before.get(k, 0.0) for k, v in cpu_by_process().items()}
        stop.set()
        toggles = await asyncio.wait_for(toggler, 60)
    return {"wall": wall, "accepted": accepted, "add_latencies": add_lat, "toggles": toggles, "cpu": cpu}


async def _bare(settings: Settings, hosts: list[str], port: int) -> float:
    options = probe_options(settings)
    queue = list(hosts)
    statuses: dict[bool, int] = {}

    async def worker() -> None:
        while queue:
            host = queue.pop()
            result = await probe(host, port, options=options)
            ok = bool(result.endpoints) and result.endpoints[0].phase == "done"
            statuses[ok] = statuses.get(ok, 0) + 1

    t0 = time.perf_counter()
    await asyncio.wait_for(asyncio.gather(*(worker() for _ in range(settings.probe_concurrency))), TIMEOUT_S)
    return time.perf_counter() - t0


async def run() -> list[Row]:
    from tests.support.dns_server import SuffixZone, dns_server
    from tests.support.nginx import nginx
    from tests.support.pki import TestPKI

    hosts = [f"d{i:05d}.bench.test" for i in range(DOMAINS)]
    with fresh_servers(BENCH) as (pg, nats), TestPKI() as pki:
        files = pki.server_files(pki.leaf("*.bench.test", dns=("*.bench.test",), org="Bench Org"))
        zone = SuffixZone("bench.test", {"A": ["127.0.0.1"]})
        with nginx(*files, workers=1) as server, dns_server(zone) as (dns_ip, dns_port):
            port = server.port
            settings = Settings(
                database_url=pg.url, nats_url=nats.url, log_format="text", log_level="WARNING",
                allow_networks=(ipaddress.ip_network("127.0.0.0/8"),), ca_file=pki.ca_file,
                probe_interval_s=3600, probe_jitter_s=0, probe_connect_timeout_s=2,
                probe_handshake_timeout_s=5, shutdown_grace_s=3,
                dns_servers=(f"{dns_ip}:{dns_port}",),
            )  # fmt: skip
            got = await _run_stack(settings, hosts, port)
            bare = await _bare(settings, hosts, port)
    enable, disable = got["toggles"]["enable"], got["toggles"]["disable"]
    note = f"{DOMAINS} domains, AddDomains x{DOMAINS // BATCH} of {BATCH}, accepted in {got['accepted']:.1f}s"
    rows = [
        Row(BENCH, f"enable {DOMAINS:,} -> every verdict", got["wall"], "s", "bare probes, same concurrency",
            bare, "max", TARGET_S, note),
        Row(BENCH, "EnableMonitoring p50 under load", median(enable), "s", "", None, "max",
            TOGGLE_P50_TARGET_S, f"{len(enable)} calls"),
        Row(BENCH, "EnableMonitoring p99 under load", percentile(enable, 99), "s", note=f"{len(enable)} calls"),
        Row(BENCH, "DisableMonitoring p50 under load", median(disable), "s", "", None, "max",
            TOGGLE_P50_TARGET_S, f"{len(disable)} calls"),
        Row(BENCH, "DisableMonitoring p99 under load", percentile(disable, 99), "s", note=f"{len(disable)} calls"),
    ]  # fmt: skip
    # Where the time went: a 2-core machine has 2 x wall CPU seconds to give.
    cpu: dict[str, float] = got["cpu"]
    rows.append(Row(BENCH, "(diag) CPU seconds of the run, every process", sum(cpu.values()), "s",
                    "2 cores x the wall time", 2 * got["wall"]))  # fmt: skip
    rows += [Row(BENCH, f"(diag) CPU seconds of the run, {name}", seconds, "s")
             for name, seconds in sorted(cpu.items(), key=lambda kv: -kv[1]) if seconds >= 0.5]  # fmt: skip
    context = {
        "domains": DOMAINS, "batch": BATCH, "wall_s": got["wall"], "accepted_s": got["accepted"],
        "add_p50_s": median(got["add_latencies"]), "bare_probes_s": bare, "cpu_s": cpu,
    }  # fmt: skip
    save(BENCH, rows, context)
    return rows


if __name__ == "__main__":
    cli(BENCH, run)
