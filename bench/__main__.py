"""`make bench` / `.venv/bin/python -m bench`: every benchmark in sequence, one summary table.

Each benchmark starts its own fresh servers and also runs alone (`python -m bench.<name>`).
Results: printed, and merged into bench/results/latest.json.
"""

from __future__ import annotations

import os
import time
from datetime import UTC, datetime

from bench import (
    console,
    contracts,
    enable_at_scale,
    event_log,
    first_status,
    hosting_acme,
    notifier_digest,
    observations,
    outbox,
    prober,
    prober_scaling,
    projection_apply,
    reports,
    vod_api,
)
from bench._common import Row, quiet_logs, run_async, setup_telemetry, table

BENCHMARKS = (
    contracts,
    event_log,
    projection_apply,
    outbox,
    first_status,
    enable_at_scale,
    prober,
    prober_scaling,
    observations,
    vod_api,
    hosting_acme,
    notifier_digest,
    console,
    reports,
)


def main() -> None:
    quiet_logs()
    setup_telemetry()
    rows: list[Row] = []
    t0 = time.perf_counter()
    for module in BENCHMARKS:
        started = time.perf_counter()
        rows += run_async(module.run)
        print(f"# {module.BENCH}: {time.perf_counter() - started:.0f}s", flush=True)
    print(
        f"\ncertwatch bench, {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, {os.cpu_count()} cores,"
        f" {time.perf_counter() - t0:.0f}s total\n"
    )
    print(table(rows))
    failed = [r for r in rows if r.passed is False]
    print(f"\n{len(failed)} target(s) missed" if failed else "\nall targets met")


if __name__ == "__main__":
    main()
