"""Latency from AddDomains to the first status (anything but ENABLING), full stack, loopback.

Run alone: `.venv/bin/python -m bench.first_status` (from the repo root; imports tests.support).

All six services run in-process (tests.support.stack.running_stack) against freshly started
PostgreSQL (durable) and NATS. Domains are added one at a time with `enable=True`, each
polled with GetDomain every 10 ms until its status leaves ENABLING (bounded per domain).
Reference: the bare probe (`certwatch.prober.tls_probe.probe`) of the same TLS server with
the same ProbeOptions, in the same process while the stack runs.
The per-hop split comes from the event log's `recorded_at` of each domain's events and the
`observed_at` of its first probe observation (a probe is telemetry, not an event: issue 10 B).
"""

from __future__ import annotations

import asyncio
import ipaddress
import time
from dataclasses import replace
from typing import Any

import psycopg

from bench._common import Row, bounded, cli, fresh_servers, median, percentile, save
from certwatch.contracts import domain as dc
from certwatch.contracts import status as sc
from certwatch.platform.config import Settings
from certwatch.prober.settings import probe_options
from certwatch.prober.tls_probe import probe

BENCH = "first_status"
DOMAINS = 50
WARMUP = 2  # first domains, reported apart: consumer creation, cold caches
POLL_S = 0.01
PER_DOMAIN_TIMEOUT_S = 10.0
P99_TARGET_S = 2.0
_PROBED = "probe observed"


async def _first_statuses(settings: Settings, hosts: list[str], port: int) -> dict[str, Any]:
    from certwatch.v1 import inventory_pb2 as pb
    from certwatch.v1 import inventory_pb2_grpc
    from tests.support.stack import running_stack

    lat: list[float] = []
    statuses: dict[str, int] = {}
    ids: list[str] = []
    async with running_stack(settings) as stack, stack.channel("inventory") as channel:
        inventory = inventory_pb2_grpc.InventoryStub(channel)
        for host in hosts:
            async with bounded(PER_DOMAIN_TIMEOUT_S + 5, f"first status of {host}"):
                t0 = time.perf_counter()
                added = await inventory.AddDomains(
                    pb.AddDomainsRequest(domains=f"{host}:{port}", enable=True),
                    metadata=stack.metadata,
                    timeout=5,
                )
                result = added.results[0]
                if not result.added:
                    raise RuntimeError(f"AddDomains refused {host}: {result.error}")
                domain_id = result.domain.id
                status = result.domain.status
                deadline = t0 + PER_DOMAIN_TIMEOUT_S
                while status == "ENABLING" and time.perf_counter() < deadline:
                    await asyncio.sleep(POLL_S)
                    got = await inventory.GetDomain(
                        pb.GetDomainRequest(id=domain_id), metadata=stack.metadata, timeout=5
                    )
                    status = got.status
                elapsed = time.perf_counter() - t0
            lat.append(elapsed if status != "ENABLING" else float("inf"))
            statuses[status] = statuses.get(status, 0) + 1
            ids.append(domain_id)
        options = probe_options(settings)
        ref: list[float] = []
        for host in hosts:
            t0 = time.perf_counter()
            res = await probe(host, port, options=options)
            ref.append(time.perf_counter() - t0)
            assert res.endpoints, res
    return {"latencies": lat, "statuses": statuses, "ids": ids, "probe": ref}


async def _hops(url: str, ids: list[str]) -> dict[str, list[float]]:
    """Per domain: MonitoringEnabled (recorded) → the first probe (its observation's
    `observed_at`, when the probe started) → DomainClassified (recorded)."""
    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
        cur = await conn.execute(
            "SELECT data->>'domain_id', event_type, min(recorded_at) FROM events"
            " WHERE data->>'domain_id' = ANY(%s) AND event_type = ANY(%s)"
            " GROUP BY 1, 2", (ids, [dc.MONITORING_ENABLED, sc.DOMAIN_CLASSIFIED]))  # fmt: skip
        at: dict[str, dict[str, Any]] = {}
        for domain_id, etype, ts in await cur.fetchall():
            at.setdefault(domain_id, {})[etype] = ts
        cur = await conn.execute(
            "SELECT domain_id::text, min(observed_at) FROM probe_observations WHERE domain_id = ANY(%s::uuid[])"
            " GROUP BY 1", (ids,))  # fmt: skip
        for domain_id, ts in await cur.fetchall():
            at.setdefault(domain_id, {})[_PROBED] = ts
    hops: dict[str, list[float]] = {"enabled->probe_started": [], "probe_started->classified": []}
    for t in at.values():
        if {dc.MONITORING_ENABLED, _PROBED, sc.DOMAIN_CLASSIFIED} <= t.keys():
            hops["enabled->probe_started"].append((t[_PROBED] - t[dc.MONITORING_ENABLED]).total_seconds())
            hops["probe_started->classified"].append((t[sc.DOMAIN_CLASSIFIED] - t[_PROBED]).total_seconds())
    return hops


async def run() -> list[Row]:
    from tests.support.pki import TestPKI
    from tests.support.tls_server import server_context, tls_server

    hosts = [f"d{i:03d}.bench.test" for i in range(WARMUP + DOMAINS)]
    with fresh_servers("first_status") as (pg, nats), TestPKI() as pki:
        files = pki.server_files(pki.leaf(hosts[0], dns=tuple(hosts), org="Bench Org"))
        with tls_server(server_context(*files)) as port:
            settings = Settings(
                database_url=pg.url, nats_url=nats.url, log_format="text", log_level="WARNING",
                allow_networks=(ipaddress.ip_network("127.0.0.0/8"),), ca_file=pki.ca_file,
                probe_interval_s=3600, probe_jitter_s=0, probe_connect_timeout_s=2,
                probe_handshake_timeout_s=2, shutdown_grace_s=3,
                resolve_overrides=tuple(f"{h}:{port}:127.0.0.1" for h in hosts),
            )  # fmt: skip
            settings = replace(settings)
            t0 = time.perf_counter()
            got = await _first_statuses(settings, hosts, port)
            wall = time.perf_counter() - t0
        hops = await _hops(pg.url, got["ids"][WARMUP:])

    lat = got["latencies"][WARMUP:]
    ref = got["probe"][WARMUP:]
    note = f"{len(lat)} domains, sequential; statuses {got['statuses']}"
    rows = [
        Row(BENCH, "AddDomains -> first status, p50", median(lat), "s", "bare probe p50",
            median(ref), note=note),
        Row(BENCH, "AddDomains -> first status, p99", percentile(lat, 99), "s", "bare probe p99",
            percentile(ref, 99), "max", P99_TARGET_S, note),
    ]  # fmt: skip
    context = {
        "domains": len(lat), "warmup_latencies_s": got["latencies"][:WARMUP],
        "latencies_s": lat, "probe_s": ref, "statuses": got["statuses"], "wall_s": round(wall, 1),
        "max_s": max(lat), "poll_s": POLL_S,
        "hops_p50_s": {k: median(v) for k, v in hops.items()},
        "hops_p99_s": {k: percentile(v, 99) for k, v in hops.items()},
    }  # fmt: skip
    save(BENCH, rows, context)
    return rows


if __name__ == "__main__":
    cli(BENCH, run)
