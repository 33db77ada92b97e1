"""Shared helpers: fresh servers, bounded timing loops, result rows, the table, latest.json.

Every figure is a `Row` that carries its reference (measured in the same run, on the same
servers) so a number is never read without the yardstick next to it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import platform
import resource
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Iterator
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

from certwatch.platform import localstack

RESULTS_DIR = Path(__file__).resolve().parent / "results"
LATEST = RESULTS_DIR / "latest.json"

T = TypeVar("T")


@dataclass
class Row:
    """One measured figure next to its reference."""

    bench: str
    metric: str
    value: float
    unit: str
    reference: str = ""
    ref_value: float | None = None
    # "ratio": pass when value/ref_value >= target; "min": value >= target; "max": value <= target
    target_kind: str = ""
    target: float | None = None
    note: str = ""

    @property
    def ratio(self) -> float | None:
        if self.ref_value in (None, 0):
            return None
        return self.value / self.ref_value  # type: ignore[operator]

    @property
    def passed(self) -> bool | None:
        if self.target is None:
            return None
        if self.target_kind == "ratio":
            return self.ratio is not None and self.ratio >= self.target
        if self.target_kind == "min":
            return self.value >= self.target
        if self.target_kind == "max":
            return self.value <= self.target
        return None

    def target_text(self) -> str:
        if self.target is None:
            return ""
        if self.target_kind == "ratio":
            return f">= {self.target:.0%} of ref"
        if self.target_kind == "min":
            return f">= {fmt(self.target)} {self.unit}"
        return f"<= {fmt(self.target)} {self.unit}"

    def as_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["ratio"] = self.ratio
        out["passed"] = self.passed
        return out


def fmt(value: float | None) -> str:
    if value is None:
        return "-"
    if abs(value) >= 100:
        return f"{value:,.0f}"
    if abs(value) >= 10:
        return f"{value:.1f}"
    return f"{value:.3g}"


def table(rows: list[Row]) -> str:
    head = ("benchmark", "measurement", "value", "reference (same run)", "ref value", "ratio",
            "target", "result")  # fmt: skip
    body = []
    for r in rows:
        result = {True: "PASS", False: "FAIL", None: ""}[r.passed]
        body.append((
            r.bench, r.metric, f"{fmt(r.value)} {r.unit}", r.reference,
            "" if r.ref_value is None else f"{fmt(r.ref_value)} {r.unit}",
            "" if r.ratio is None or not r.unit.endswith("/s") else f"{r.ratio:.0%}",
            r.target_text(), result,
        ))  # fmt: skip
    widths = [max(len(h), *(len(b[i]) for b in body)) if body else len(h) for i, h in enumerate(head)]

    def line(cells: tuple[str, ...]) -> str:
        return "| " + " | ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)) + " |"

    sep = "|" + "|".join("-" * (w + 2) for w in widths) + "|"
    return "\n".join([line(head), sep, *(line(b) for b in body)])


def machine() -> dict[str, Any]:
    return {
        "cores": os.cpu_count(),
        "platform": platform.platform(),
        "python": sys.version.split()[0],
        "postgres_bindir": str(localstack.postgres_bindir()),
    }


def save(bench: str, rows: list[Row], context: dict[str, Any]) -> None:
    """Merge this benchmark's rows into bench/results/latest.json."""
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    data: dict[str, Any] = {}
    if LATEST.exists():
        with contextlib.suppress(ValueError, OSError):
            data = json.loads(LATEST.read_text())
    data.setdefault("benchmarks", {})
    data["date"] = datetime.now(UTC).isoformat(timespec="seconds")
    data["machine"] = machine()
    data["benchmarks"][bench] = {
        "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "context": context,
        "rows": [r.as_dict() for r in rows],
    }
    tmp = LATEST.with_suffix(".tmp")
    tmp.write_text(json.dumps(data, indent=2, default=str))
    tmp.replace(LATEST)


@contextlib.contextmanager
def fresh_servers(label: str) -> Iterator[tuple[localstack.Postgres, localstack.Nats]]:
    """Freshly started PostgreSQL (durable settings: fsync on, synchronous_commit default)
    and NATS JetStream under a temporary directory, removed afterwards."""
    root = Path(tempfile.mkdtemp(prefix=f"certwatch-bench-{label}-"))
    try:
        with localstack.running(root, fast_unsafe=False) as (pg, nats):
            yield pg, nats
    finally:
        RESULTS_DIR.mkdir(parents=True, exist_ok=True)
        with contextlib.suppress(OSError):  # kept for the analysis (autovacuum, lock waits)
            shutil.copyfile(root / "postgres" / "server.log", RESULTS_DIR / f"{label}-postgres.log")
        shutil.rmtree(root, ignore_errors=True)


def log_mentions(label: str, needles: tuple[str, ...]) -> dict[str, int]:
    """How often each needle occurs in the saved server log of `fresh_servers(label)`."""
    path = RESULTS_DIR / f"{label}-postgres.log"
    text = path.read_text(errors="replace") if path.exists() else ""
    return {n: text.count(n) for n in needles}


async def pg_settings(conn: Any) -> dict[str, str]:
    names = ["synchronous_commit", "fsync", "wal_sync_method", "full_page_writes",
             "shared_buffers", "commit_delay", "server_version"]  # fmt: skip
    cur = await conn.execute("SELECT name, setting FROM pg_settings WHERE name = ANY(%s)", (names,))
    return {r[0]: r[1] for r in await cur.fetchall()}


async def timed_workers(
    n: int, op: Callable[[int, int], Awaitable[int]], *, seconds: float, max_ops: int
) -> tuple[int, float, list[float]]:
    """Run `n` concurrent workers calling op(worker, i) (returns items done) until `seconds`
    pass or `max_ops` calls were made in total; return (items, elapsed, op latencies)."""
    deadline = time.perf_counter() + seconds
    calls = 0
    items = 0
    latencies: list[float] = []

    async def worker(w: int) -> None:
        nonlocal calls, items
        i = 0
        while time.perf_counter() < deadline and calls < max_ops:
            calls += 1
            t0 = time.perf_counter()
            done = await op(w, i)  # not `items += await ...`: that reads `items` before the
            items += done  # await and loses the other workers' updates made meanwhile
            latencies.append(time.perf_counter() - t0)
            i += 1

    start = time.perf_counter()
    await asyncio.wait_for(asyncio.gather(*(worker(w) for w in range(n))), seconds + 60)
    return items, time.perf_counter() - start, latencies


def self_cpu() -> float:
    """CPU seconds (user + system) of this process so far."""
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def percentile(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    k = (len(ordered) - 1) * p / 100
    lo, hi = int(k), min(int(k) + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def run_async(main: Callable[[], Coroutine[Any, Any, T]]) -> T:
    """Run on uvloop, as the services do (certwatch.platform.service.main)."""
    try:
        import uvloop

        return uvloop.run(main())
    except ImportError:
        return asyncio.run(main())


def quiet_logs() -> None:
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger().setLevel(logging.WARNING)


def setup_telemetry() -> None:
    """Real SDK providers, no exporter: what every service process has (service.main)."""
    from certwatch.platform import telemetry

    telemetry.setup("bench", otlp_endpoint=None)


@contextlib.asynccontextmanager
async def bounded(seconds: float, what: str) -> AsyncIterator[None]:
    try:
        async with asyncio.timeout(seconds):
            yield
    except TimeoutError as exc:
        raise RuntimeError(f"{what} did not finish within {seconds:.0f}s") from exc


def cli(name: str, run: Callable[[], Coroutine[Any, Any, list[Row]]]) -> None:
    """`python -m bench.<name>`: run one benchmark, print its table, save it."""
    quiet_logs()
    setup_telemetry()
    rows = run_async(run)
    print(table(rows))


def cpu_by_process(root_pid: int | None = None) -> dict[str, float]:
    """CPU seconds (user + system) so far of every living descendant of `root_pid` (this
    process by default), summed by what it is: a certwatch service by its name (`serve X`),
    anything else by its command (postgres, nats-server, nginx). Where a whole system's
    time went, on a machine whose cores it shares."""
    root = os.getpid() if root_pid is None else root_pid
    tick = os.sysconf("SC_CLK_TCK")
    parent: dict[int, int] = {}
    used: dict[int, float] = {}
    label: dict[int, str] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError, ValueError, IndexError):
            stat = (entry / "stat").read_text()
            comm_end = stat.rindex(")")
            fields = stat[comm_end + 2 :].split()
            pid = int(entry.name)
            parent[pid] = int(fields[1])
            used[pid] = (int(fields[11]) + int(fields[12])) / tick
            argv = (entry / "cmdline").read_bytes().split(b"\0")
            served = argv.index(b"serve") + 1 if b"serve" in argv else 0
            label[pid] = argv[served].decode() if served else stat[stat.index("(") + 1 : comm_end]
    totals: dict[str, float] = {}
    for pid in used:
        top, seen = pid, 0
        while parent.get(top, 0) not in (root, 0) and seen < 64:  # the child of root it descends from
            top, seen = parent[top], seen + 1
        if parent.get(top) == root and pid != root:
            name = label.get(top, "?")
            totals[name] = totals.get(name, 0.0) + used[pid]
    return totals
