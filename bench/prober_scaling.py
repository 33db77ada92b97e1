"""N prober processes against the same local TLS targets: the speed-up from a second replica.

Run alone: `.venv/bin/python -m bench.prober_scaling` (from the repo root; imports tests.support).
Needs Debian's `nginx` (checked, not installed).

One fresh durable PostgreSQL 15 and NATS, `DOMAINS` rows due in `probe_schedule` (wildcard
`*.bench.test` names that a loopback DNS server answers, so the probe resolves as in
production), one nginx with 2 workers serving a leaf + intermediate. Then N = 1, then N = 2
`certwatch serve prober` processes (the real service: its Scheduler claims due rows with
`FOR UPDATE SKIP LOCKED`, probes, reschedules and appends the results), each measured for
`PHASE_S` after `WARMUP_S`: probes recorded per second (rows of `probe_schedule` probed in
the window) and the probers' CPU per probe (utime+stime from /proc). The reference of N = 2
is N = 1, measured in the same run on the same servers. On this 2-core machine nginx,
PostgreSQL and the probers share the cores, so the speed-up is bounded by the machine, not
by the claim protocol: the CPU per probe says what a replica costs.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from bench._common import Row, cli, fresh_servers, save
from bench.prober import SUFFIX, cpu_ticks, missing_packages, seed_due, self_cpu
from certwatch.cli.healthcheck import healthy
from certwatch.platform import db, localstack
from certwatch.services import MIGRATIONS
from tests.support.dns_server import SuffixZone, dns_server
from tests.support.nginx import nginx

BENCH = "prober_scaling"
DOMAINS = int(os.environ.get("BENCH_SCALING_DOMAINS", "60000"))
PHASE_S = float(os.environ.get("BENCH_SCALING_PHASE_S", "8"))
WARMUP_S = 3.0
START_TIMEOUT_S = 60.0
REPLICAS = (1, 2)


@contextlib.contextmanager
def probers(n: int, env: dict[str, str]) -> Iterator[list[subprocess.Popen[bytes]]]:
    """`n` prober processes, each on its own gRPC port; serving when this yields."""
    logs = Path(tempfile.mkdtemp(prefix="certwatch-bench-probers-"))
    procs: list[subprocess.Popen[bytes]] = []
    ports = [localstack.free_port() for _ in range(n)]
    try:
        for i, port in enumerate(ports):
            with open(logs / f"prober-{i}.log", "wb") as out:
                procs.append(subprocess.Popen(
                    [sys.executable, "-m", "certwatch.cli.main", "serve", "prober"],
                    env={**env, "CERTWATCH_PROBER_PORT": str(port)}, stdout=out, stderr=subprocess.STDOUT,
                    start_new_session=True,
                ))  # fmt: skip
        deadline = time.monotonic() + START_TIMEOUT_S
        for proc, port in zip(procs, ports, strict=True):
            while not healthy("prober", port)[0]:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"prober did not start: {(logs / 'prober-0.log').read_text()[-2000:]}")
                time.sleep(0.2)
        yield procs
    finally:
        for proc in procs:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
        for proc in procs:
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(5)


async def _probed(pool: Any) -> int:
    async with pool.connection() as conn:
        row = await (
            await conn.execute("SELECT count(*) FROM probe_schedule WHERE last_probed IS NOT NULL")
        ).fetchone()
    return int(row[0])


async def phase(n: int, pool: Any, env: dict[str, str]) -> dict[str, float]:
    with probers(n, env) as procs:
        await asyncio.sleep(WARMUP_S)
        p0, c0, t0 = await _probed(pool), sum(cpu_ticks(p.pid) for p in procs), time.perf_counter()
        own0 = self_cpu()  # this process: the DNS server's thread
        await asyncio.sleep(PHASE_S)
        p1, c1, t1 = await _probed(pool), sum(cpu_ticks(p.pid) for p in procs), time.perf_counter()
        own1 = self_cpu()
    done = p1 - p0
    if p1 >= DOMAINS:
        raise RuntimeError(f"every one of the {DOMAINS} due domains was probed: raise BENCH_SCALING_DOMAINS")
    return {"probes": done, "rate": done / (t1 - t0), "cpu_ms": 1000 * (c1 - c0) / max(done, 1),
            "prober_cpu_util": (c1 - c0) / (t1 - t0), "dns_cpu_util": (own1 - own0) / (t1 - t0)}  # fmt: skip


async def run() -> list[Row]:
    from tests.support.pki import TestPKI

    if missing := [m for m in missing_packages() if m == "nginx"]:
        raise SystemExit(f"bench.prober_scaling needs the Debian package {missing[0]}")
    results: dict[int, dict[str, float]] = {}
    with (
        TestPKI("certwatch Bench") as pki,
        fresh_servers(BENCH) as (pg, nats),
        dns_server(SuffixZone(SUFFIX.strip("."), {"A": ["127.0.0.1"]})) as nameserver,
    ):
        leaf = pki.leaf(f"d0{SUFFIX}", dns=(f"*{SUFFIX}",), org="Bench Org")
        with nginx(*pki.server_files(leaf)) as (port, _workers):
            pool = await db.open_pool(pg.url, max_size=2, migrate=MIGRATIONS)
            try:
                await seed_due(pool, port, DOMAINS)
                env = {
                    **os.environ, "CERTWATCH_DATABASE_URL": pg.url, "CERTWATCH_NATS_URL": nats.url,
                    "CERTWATCH_ALLOW_NETWORKS": "127.0.0.0/8", "CERTWATCH_CA_FILE": pki.ca_file,
                    "CERTWATCH_DNS_SERVERS": f"{nameserver[0]}:{nameserver[1]}", "CERTWATCH_LOG_LEVEL": "WARNING",
                    "CERTWATCH_PROBE_INTERVAL_S": "86400", "CERTWATCH_PROBE_JITTER_S": "0",
                }  # fmt: skip
                for n in REPLICAS:
                    results[n] = await phase(n, pool, env)
                    print(f"# {n} prober(s): {results[n]}", file=sys.stderr, flush=True)
            finally:
                await pool.close()
    one, two = results[1], results[2]
    rows = [
        Row(BENCH, "1 prober process, rate", one["rate"], "probes/s", note=f"{one['probes']:.0f} probes"),
        Row(BENCH, "2 prober processes, rate", two["rate"], "probes/s", "1 prober process", one["rate"],
            note=f"speed-up {two['rate'] / one['rate']:.2f}x on {os.cpu_count()} cores shared with nginx and PostgreSQL"),
        Row(BENCH, "1 prober process, CPU", one["cpu_ms"], "ms/probe"),
        Row(BENCH, "2 prober processes, CPU", two["cpu_ms"], "ms/probe", "1 prober process", one["cpu_ms"]),
    ]  # fmt: skip
    save(
        BENCH, rows, {"domains_due": DOMAINS, "phase_s": PHASE_S, "cores": os.cpu_count(), "phases": results}
    )
    return rows


if __name__ == "__main__":
    cli(BENCH, run)
