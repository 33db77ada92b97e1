"""Prober throughput and CPU per probe, side by side with blackbox_exporter and a bare loop.

Run alone: `.venv/bin/python -m bench.prober` (from the repo root; imports tests.support).
Needs the Debian packages `nginx` and `prometheus-blackbox-exporter` (checked, not installed).

One nginx (Debian's, 2 workers, no daemon, its own prefix/conf/pid/logs in a temp dir: run by
`tests.support.nginx`) on 127.0.0.1:<free port> serves a leaf + intermediate from a throw-away
PKI (ECDSA P-256, wildcard `*.bench.test`, TLS 1.2/1.3, no session tickets or cache: every
handshake is full).
Against it, in the same run and at the same concurrency, one after the other:

- floor: a bare uvloop loop (TCP connect, TLS handshake, read the presented chain, close),
  with the probe's own handshake driver (BENCH_PROBER_FLOOR=stdlib: the stdlib's ssl);
- certwatch, probe only (diag): `tls_probe.probe` + `classify` in a loop, no database;
- certwatch, full: the real `Scheduler` (claim from probe_schedule, probe, store the chains
  the domain's last probe did not store, reschedule and publish a `ProbeObserved` a probe to
  the observation stream of a freshly started local NATS JetStream with
  `observation_stream.publish`, as the prober service does; one transaction per flush)
  against a freshly started durable PostgreSQL with 100,000 domains due, each probe also
  classified (`classify`) in the prober process so that its CPU counts. Every probe is its
  domain's first, so every flush also stores its chains (one chain for all: ON CONFLICT DO
  NOTHING after the first). Figures count recorded (committed and published) probes only.
  Prober RSS is sampled while it works through the 100k due rows;
- blackbox_exporter: `/usr/bin/prometheus-blackbox-exporter`, a tcp module with `tls: true`
  (ca_file = the PKI root, server_name set), driven by keep-alive HTTP GETs of
  /probe?module=...&target=127.0.0.1:PORT; CPU from /proc/<pid>/stat (utime+stime).

CPU per probe is the CPU time of the measured process only (getrusage of this process for
the floor and certwatch, /proc stat of the exporter for blackbox), divided by probes done.
Time from EnableMonitoring to the first verdict is measured by bench/first_status.py.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import shutil
import ssl
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench._common import RESULTS_DIR, Row, cli, fresh_servers, percentile, save, self_cpu
from certwatch.platform.localstack import free_port as _free_port
from tests.support.nginx import NGINX, nginx
from tests.support.nginx import children as _children
from tests.support.nginx import stop as _stop
from tests.support.nginx import wait_port as _wait_port

BENCH = "prober"
BLACKBOX = "/usr/bin/prometheus-blackbox-exporter"
APT = "apt-get update -qq && apt-get install -y nginx prometheus-blackbox-exporter"
CONCURRENCY = int(os.environ.get("BENCH_PROBER_CONCURRENCY", "256"))
PHASE_S = float(os.environ.get("BENCH_PROBER_PHASE_S", "6"))  # measured seconds per phase
WARMUP_S = 1.5
MAX_OPS = 200_000  # per phase, on top of the time bound
DOMAINS = 100_000  # due in probe_schedule during the full run
SUFFIX = ".bench.test"
TARGET_RATE = 1000.0
CLK_TCK = os.sysconf("SC_CLK_TCK")
PHASES = set(os.environ.get("BENCH_PROBER_PHASES", "floor,probe,scheduler,blackbox").split(","))
JSON_OUT = RESULTS_DIR / "prober.json"


# ---------------------------------------------------------------- processes and helpers


def missing_packages() -> list[str]:
    return [pkg for pkg, path in (("nginx", NGINX), ("prometheus-blackbox-exporter", BLACKBOX))
            if not os.access(path, os.X_OK)]  # fmt: skip


def cpu_ticks(pid: int) -> float:
    """utime + stime of one process, in seconds."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def _tree_cpu(pid: int) -> float:
    """CPU seconds of a process and its direct children (PostgreSQL: postmaster + backends);
    children that exit in between are missed, so this is a lower bound."""
    total = 0.0
    for p in (pid, *_children(pid)) if pid else ():
        with contextlib.suppress(OSError):
            total += cpu_ticks(p)
    return total


def rss_mib(pid: int | str = "self") -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


@contextlib.contextmanager
def blackbox(ca_file: str, server_name: str) -> Iterator[tuple[int, int]]:
    """blackbox_exporter with one tcp+tls module: (port, pid)."""
    root = Path(tempfile.mkdtemp(prefix="certwatch-bench-blackbox-"))
    port = _free_port()
    conf = root / "blackbox.yml"
    conf.write_text(f"""modules:
  tls_connect:
    prober: tcp
    timeout: 5s
    tcp:
      preferred_ip_protocol: ip4
      tls: true
      tls_config:
        ca_file: {ca_file}
        server_name: {server_name}
""")
    proc = subprocess.Popen(
        [BLACKBOX, f"--config.file={conf}", f"--web.listen-address=127.0.0.1:{port}",
         "--log.level=error"],
        stdout=subprocess.DEVNULL, stderr=open(root / "stderr.log", "wb"), start_new_session=True,  # noqa: SIM115
    )  # fmt: skip
    try:
        _wait_port(port, proc, "blackbox_exporter")
        yield port, proc.pid
    finally:
        _stop(proc)
        shutil.rmtree(root, ignore_errors=True)


class LoopbackResolve(Mapping[tuple[str, int], tuple[str, ...]]):
    """A resolve override for every `*.bench.test` name on one port: no 100k-entry dict."""

    def __init__(self, port: int) -> None:
        self._port = port

    def __getitem__(self, key: tuple[str, int]) -> tuple[str, ...]:
        if key[1] == self._port and key[0].endswith(SUFFIX):
            return ("127.0.0.1",)
        raise KeyError(key)

    def __iter__(self) -> Iterator[tuple[str, int]]:
        return iter(())

    def __len__(self) -> int:
        return 0


async def measured(
    op: Callable[[int], Awaitable[bool]],
    *,
    cpu: Callable[[], float],
    seconds: float,
    concurrency: int = CONCURRENCY,
) -> dict[str, Any]:
    """`concurrency` workers calling op(i) for WARMUP_S, then `seconds` measured; bounded."""
    state = {"measuring": False, "ok": 0, "failed": 0, "calls": 0}
    latencies: list[float] = []
    stop_at = time.perf_counter() + WARMUP_S + seconds

    async def worker(w: int) -> None:
        i = w
        while time.perf_counter() < stop_at and state["calls"] < MAX_OPS:
            state["calls"] += 1
            t0 = time.perf_counter()
            good = await op(i)
            if state["measuring"]:
                latencies.append(time.perf_counter() - t0)
                state["ok" if good else "failed"] += 1
            i += concurrency

    async def window() -> tuple[float, float]:
        await asyncio.sleep(WARMUP_S)
        state["measuring"] = True
        c0, t0 = cpu(), time.perf_counter()
        await asyncio.sleep(seconds)
        state["measuring"] = False
        return cpu() - c0, time.perf_counter() - t0

    task = asyncio.ensure_future(window())
    await asyncio.wait_for(asyncio.gather(*(worker(w) for w in range(concurrency))), seconds + 60)
    cpu_s, wall = await task
    done = state["ok"]
    return {
        "probes": done, "failed": state["failed"], "wall_s": wall, "rate": done / wall,
        "cpu_ms": 1000 * cpu_s / max(done, 1), "cpu_util": cpu_s / wall,
        "p50_ms": 1000 * percentile(latencies, 50), "p99_ms": 1000 * percentile(latencies, 99),
    }  # fmt: skip


# ---------------------------------------------------------------- the phases


def _bare_context() -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    ctx.options |= ssl.OP_NO_TICKET
    return ctx


async def floor_phase(port: int) -> dict[str, Any]:
    """TCP connect + TLS handshake (SNI) + the presented chain (DER), nothing else.

    With the handshake driver the probe uses (``tls_chain.Handshake``: cryptography's
    OpenSSL over memory BIOs), so that the floor stays the probe's own floor; with the
    stdlib's SSL (uvloop's start_tls) when that driver is unavailable, as the probe does.
    """
    from certwatch.prober.tls_chain import NATIVE, Handshake, presented_chain

    loop = asyncio.get_running_loop()
    ctx = _bare_context()

    async def native(i: int) -> bool:
        _, protocol = await loop.create_connection(Handshake, "127.0.0.1", port)
        try:  # no per-call timeout: the phase as a whole is bounded
            await protocol.start(f"d{i}{SUFFIX}")
            return len(protocol.chain()) == 2
        finally:
            protocol.close()

    async def stdlib(i: int) -> bool:
        transport, protocol = await loop.create_connection(asyncio.Protocol, "127.0.0.1", port)
        try:  # no per-call timeout: the phase as a whole is bounded
            tls = await loop.start_tls(transport, protocol, ctx, server_hostname=f"d{i}{SUFFIX}")
            chain = presented_chain(tls.get_extra_info("ssl_object"))
            tls.abort()
            return len(chain) == 2
        finally:
            transport.abort()

    use_stdlib = not NATIVE or os.environ.get("BENCH_PROBER_FLOOR") == "stdlib"
    out = await measured(stdlib if use_stdlib else native, cpu=self_cpu, seconds=PHASE_S)
    out["driver"] = "stdlib ssl (uvloop start_tls)" if use_stdlib else "tls_chain.Handshake"
    return out


def _options(port: int, ca_file: str) -> Any:
    import ipaddress

    from certwatch.prober.options import ProbeOptions

    return ProbeOptions(
        connect_timeout=2.0, handshake_timeout=3.0, overall=10.0, resolve=LoopbackResolve(port),
        ca_file=ca_file, allow_networks=(ipaddress.ip_network("127.0.0.0/8"),),
    )  # fmt: skip


async def probe_phase(port: int, ca_file: str) -> dict[str, Any]:
    """probe() + classify() per domain, no database (diagnostic: the probe's own cost)."""
    from certwatch.prober.tls_probe import probe
    from certwatch.rules.classify import classify

    options = _options(port, ca_file)
    statuses: dict[str, int] = {}

    async def op(i: int) -> bool:
        result = await probe(f"d{i}{SUFFIX}", port, options=options)
        verdict = classify(result, first_check=False, now=datetime.now(UTC))
        statuses[str(verdict.status)] = statuses.get(str(verdict.status), 0) + 1
        return str(verdict.status) == "SECURE"

    out = await measured(op, cpu=self_cpu, seconds=PHASE_S)
    out["statuses"] = statuses
    return out


async def seed_due(pool: Any, port: int, count: int) -> None:
    """`count` domains `d<i>.bench.test:port` due an hour ago, in `probe_schedule`."""
    async with pool.connection() as conn:
        await conn.execute(
            "INSERT INTO probe_schedule (domain_id, account_id, host, port, generation,"
            " first_check, paused, next_due)"
            " SELECT gen_random_uuid(), %s, 'd' || g || %s, %s, 1, false, false,"
            "  now() - interval '1 hour' + g * interval '1 microsecond'"
            " FROM generate_series(1, %s) g",
            (str(uuid.uuid4()), SUFFIX, port, count),
        )  # fmt: skip
        await conn.execute("ANALYZE probe_schedule")


async def scheduler_phase(port: int, ca_file: str) -> dict[str, Any]:
    """The real Scheduler against durable PostgreSQL with DOMAINS rows due."""
    from certwatch.platform import bus as busmod
    from certwatch.platform import db
    from certwatch.platform import observation_stream as ostream
    from certwatch.platform.eventlog import EventLog
    from certwatch.prober.scheduler import Scheduler
    from certwatch.rules.classify import classify
    from certwatch.services import MIGRATIONS

    class ClassifyingScheduler(Scheduler):
        """Also classifies each result in-process, so classification CPU is counted."""

        statuses: dict[str, int]

        async def _probe(self, due: Any, traceparent: str | None) -> Any:
            done = await super()._probe(due, traceparent)
            verdict = classify(done[1], first_check=due.first_check, now=datetime.now(UTC))
            key = str(verdict.status)
            self.statuses[key] = self.statuses.get(key, 0) + 1
            return done

    options = _options(port, ca_file)
    with fresh_servers("prober") as (pg, nats):
        pool = await db.open_pool(pg.url, max_size=4, migrate=MIGRATIONS)
        bus = await busmod.connect(nats.url, name="bench-prober")
        try:
            await ostream.ensure_stream(bus.js)

            async def publish(observations: Sequence[ostream.Outgoing]) -> int:
                return await ostream.publish(bus.nc, observations)

            await seed_due(pool, port, DOMAINS)
            rss_before = rss_mib()
            scheduler = ClassifyingScheduler(
                EventLog(pool), options, publish, interval_s=86_400, jitter_s=0, concurrency=CONCURRENCY,
                worker_id="bench",
            )  # fmt: skip
            scheduler.statuses = {}
            task = asyncio.create_task(scheduler.run())
            rss: list[float] = []
            try:
                await asyncio.sleep(WARMUP_S)
                p0, c0, t0 = scheduler.probed, self_cpu(), time.perf_counter()
                pg0 = _tree_cpu(pg.proc.pid if pg.proc else 0)
                for _ in range(int(PHASE_S / 0.25)):
                    await asyncio.sleep(0.25)
                    rss.append(rss_mib())
                    if task.done():
                        break
                p1, c1, t1 = scheduler.probed, self_cpu(), time.perf_counter()
                pg1 = _tree_cpu(pg.proc.pid if pg.proc else 0)
            finally:
                scheduler.stop()
                await asyncio.wait_for(task, 20)
            async with pool.connection() as conn:
                cur = await conn.execute(
                    "SELECT count(*), count(*) FILTER (WHERE last_probed IS NULL AND next_due <= now())"
                    " FROM probe_schedule"
                )  # fmt: skip
                total_rows, still_due = await cur.fetchone()  # type: ignore[misc]
                cur = await conn.execute("SELECT count(*) FROM events")
                events = (await cur.fetchone())[0]  # type: ignore[index]
            stream = (await bus.js.stream_info(ostream.STREAM)).state
        finally:
            await bus.close()
            await pool.close()
    done = p1 - p0
    return {
        "probes": done, "wall_s": t1 - t0, "rate": done / (t1 - t0),
        "cpu_ms": 1000 * (c1 - c0) / max(done, 1), "cpu_util": (c1 - c0) / (t1 - t0),
        "postgres_cpu_ms": 1000 * (pg1 - pg0) / max(done, 1), "recorded_total": scheduler.probed, "events": events,
        "observations_published": stream.messages, "avg_message_bytes": stream.bytes / max(stream.messages, 1),
        "statuses": scheduler.statuses, "rows": total_rows, "still_due_at_end": still_due,
        "rss_mib_before_start": rss_before, "rss_mib_max": max(rss, default=float("nan")),
        "rss_mib_last": rss[-1] if rss else float("nan"),
    }  # fmt: skip


async def blackbox_phase(port: int, ca_file: str) -> dict[str, Any]:
    with blackbox(ca_file, f"d0{SUFFIX}") as (bb_port, pid):
        request = (f"GET /probe?module=tls_connect&target=127.0.0.1:{port} HTTP/1.1\r\n"
                   f"Host: 127.0.0.1:{bb_port}\r\n\r\n").encode()  # fmt: skip
        conns: dict[int, tuple[asyncio.StreamReader, asyncio.StreamWriter]] = {}

        async def op(i: int) -> bool:
            w = i % CONCURRENCY
            if w not in conns:
                conns[w] = await asyncio.open_connection("127.0.0.1", bb_port)
            reader, writer = conns[w]
            writer.write(request)
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
            m = re.search(rb"(?i)content-length:\s*(\d+)", head)
            body = await reader.readexactly(int(m.group(1))) if m else b""
            if not m:
                raise RuntimeError("blackbox_exporter answered without Content-Length")
            return b"\nprobe_success 1" in body

        try:
            out = await measured(op, cpu=lambda: cpu_ticks(pid), seconds=PHASE_S)
        finally:
            for _, writer in conns.values():
                writer.close()
        out["rss_mib"] = rss_mib(pid)
        return out


# ---------------------------------------------------------------- run


def _with_nginx_cpu(workers: list[int], out: dict[str, Any], c0: float) -> None:
    total = sum(cpu_ticks(p) for p in workers) - c0
    out["nginx_cpu_ms"] = 1000 * total / max(out["probes"], 1)


async def run() -> list[Row]:
    from tests.support.pki import TestPKI

    missing = missing_packages()
    if missing:
        raise SystemExit(f"bench.prober needs Debian packages {' '.join(missing)}: {APT}")
    results: dict[str, dict[str, Any]] = {}
    with TestPKI("certwatch Bench") as pki:
        leaf = pki.leaf(f"d0{SUFFIX}", dns=(f"*{SUFFIX}",), org="Bench Org")
        with nginx(*pki.server_files(leaf)) as (port, workers):
            phases: list[tuple[str, Callable[[], Awaitable[dict[str, Any]]]]] = [
                ("floor", lambda: floor_phase(port)),
                ("probe", lambda: probe_phase(port, pki.ca_file)),
                ("scheduler", lambda: scheduler_phase(port, pki.ca_file)),
                ("blackbox", lambda: blackbox_phase(port, pki.ca_file)),
            ]
            for name, phase in phases:
                if name not in PHASES:
                    continue
                c0 = sum(cpu_ticks(p) for p in workers)
                results[name] = await phase()
                _with_nginx_cpu(workers, results[name], c0)
                print(f"# {name}: {json.dumps(results[name], default=str)}", file=sys.stderr, flush=True)
    rows = _rows(results)
    context = {"concurrency": CONCURRENCY, "phase_s": PHASE_S, "domains_due": DOMAINS,
               "cores": os.cpu_count(), "phases": results}  # fmt: skip
    save(BENCH, rows, context)
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    JSON_OUT.write_text(json.dumps({
        "date": datetime.now(UTC).isoformat(timespec="seconds"), **context,
        "rows": [r.as_dict() for r in rows]}, indent=2, default=str))  # fmt: skip
    return rows


def _rows(res: dict[str, dict[str, Any]]) -> list[Row]:
    rows: list[Row] = []
    c = f"concurrency {CONCURRENCY}"
    floor, bb = res.get("floor", {}), res.get("blackbox", {})
    for key, label in (("scheduler", "full probes (Scheduler+PG+JetStream+classify)"),
                       ("probe", "(diag) probe()+classify, no DB")):  # fmt: skip
        r = res.get(key)
        if not r:
            continue
        note = f"{c}; statuses {r.get('statuses')}"
        target = ("min", TARGET_RATE) if key == "scheduler" else ("", None)
        rows.append(Row(BENCH, f"{label}, rate", r["rate"], "probes/s", "blackbox_exporter",
                        bb.get("rate"), target[0], target[1], note))  # fmt: skip
        rows.append(Row(BENCH, f"{label}, CPU", r["cpu_ms"], "ms/probe", "blackbox_exporter",
                        bb.get("cpu_ms"), "max" if bb and key == "scheduler" else "",
                        bb.get("cpu_ms") if key == "scheduler" else None, note))  # fmt: skip
    if floor:
        rows.append(Row(BENCH, "floor: bare handshake+chain, rate", floor["rate"], "probes/s",
                        "blackbox_exporter", bb.get("rate"), note=c))  # fmt: skip
        rows.append(Row(BENCH, "floor: bare handshake+chain, CPU", floor["cpu_ms"], "ms/probe",
                        "blackbox_exporter", bb.get("cpu_ms"), note=c))  # fmt: skip
    if bb:
        rows.append(Row(BENCH, "blackbox_exporter tcp+tls, rate", bb["rate"], "probes/s", note=c))
        rows.append(Row(BENCH, "blackbox_exporter tcp+tls, CPU", bb["cpu_ms"], "ms/probe",
                        note=f"{c}; its own utime+stime"))  # fmt: skip
    s = res.get("scheduler")
    if s:
        rows.append(Row(BENCH, f"prober RSS, {DOMAINS:,} domains due (max)", s["rss_mib_max"], "MiB",
                        "RSS before Scheduler start", s["rss_mib_before_start"],
                        note=f"{s['rows']:,} rows in probe_schedule; schedule lives in PostgreSQL"))  # fmt: skip
    return rows


def main() -> None:
    missing = missing_packages()
    if missing:
        print(f"bench.prober needs the Debian packages: {' '.join(missing)}\n  install: {APT}",
              file=sys.stderr)  # fmt: skip
        raise SystemExit(2)
    cli(BENCH, run)


if __name__ == "__main__":
    main()
