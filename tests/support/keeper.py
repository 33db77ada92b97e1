"""Local servers that a test stops and starts again while gRPC runs in the test process.

`localstack` starts PostgreSQL and NATS with a pre-exec hook (and, as root, a user switch),
so Python forks, and a fork from a process whose gRPC threads are busy can crash the child
(seen: nats-server and the reachability probe dying with SIGSEGV as they started). So each
server is kept by a small single-threaded Python process of its own
(`python -m tests.support.keeper postgres|nats ...`), started without that hazard: it starts
the server, prints `ready`, and on SIGTERM stops it gracefully, on SIGUSR1 SIGKILLs it (a
crash), on SIGHUP passes the signal on (a configuration reload). A restart is a new keeper
on the same data and port.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from certwatch.platform.localstack import Nats, Postgres

START_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 40.0


@dataclass
class Kept:
    """A server run by a keeper process; `args` are the keeper's (kind first)."""

    args: tuple[str, ...]
    proc: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def start(self) -> None:
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "tests.support.keeper", *self.args], stdout=subprocess.PIPE, env=env
        )
        out = self.proc.stdout
        assert out is not None
        line: list[bytes] = []
        reader = threading.Thread(target=lambda: line.append(out.readline()), daemon=True)
        reader.start()
        reader.join(START_TIMEOUT_S)
        if not line or line[0].strip() != b"ready":
            self.stop()
            raise RuntimeError(f"keeper {self.args} did not start within {START_TIMEOUT_S:.0f}s: {line!r}")

    def signal(self, sig: int) -> None:
        if self.running:
            assert self.proc is not None
            self.proc.send_signal(sig)

    def kill(self) -> None:
        """SIGKILL the server, as a crash would, and wait for the keeper to exit."""
        self.signal(signal.SIGUSR1)
        self._reap()

    def stop(self) -> None:
        """A graceful stop (for PostgreSQL a fast shutdown: every client connection is cut)."""
        self.signal(signal.SIGTERM)
        self._reap()

    def _reap(self) -> None:
        if self.proc is None:
            return
        try:
            self.proc.wait(STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)
        if self.proc.stdout is not None:
            self.proc.stdout.close()


def kept_postgres(data_dir: Path, port: int) -> Kept:
    return Kept(("postgres", str(data_dir), str(port)))


def kept_nats(store_dir: Path, port: int, config: Path) -> Kept:
    return Kept(("nats", str(store_dir), str(port), str(config)))


def _server(argv: list[str]) -> Any:
    kind, *rest = argv
    if kind == "postgres":
        return Postgres(Path(rest[0]), int(rest[1]), fast_unsafe=True)
    if kind == "nats":
        return Nats(Path(rest[0]), int(rest[1]), config=Path(rest[2]))
    raise SystemExit(f"unknown server kind {kind!r}")


def _main(argv: list[str]) -> None:
    server = _server(argv)
    done = threading.Event()
    how: list[str] = []

    def on(name: str) -> Any:
        return lambda *_: (how.append(name), done.set())

    signal.signal(signal.SIGTERM, on("stop"))
    signal.signal(signal.SIGUSR1, on("kill"))
    signal.signal(signal.SIGHUP, lambda *_: server.proc and server.proc.send_signal(signal.SIGHUP))
    server.start()
    try:
        print("ready", flush=True)
        done.wait()
    finally:
        with contextlib.suppress(Exception):
            if how == ["kill"] and hasattr(server, "kill"):
                server.kill()
            else:
                server.stop()


if __name__ == "__main__":
    _main(sys.argv[1:])
