"""`certwatch stack`: the whole system on one machine, what `make run` starts.

PostgreSQL and NATS JetStream run as child processes with their data under `./var` (kept
between runs), then each service runs as its own `certwatch serve NAME` process. The first
run creates a local account with some quota and writes its key to `var/credentials.json`,
which the CLI reads. Ctrl-C stops everything: services first (graceful), then the servers.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from certwatch.platform import localstack
from certwatch.platform.config import SERVICE_PORTS
from certwatch.platform.shredding import new_master_key

_PREFERRED = {"postgres": 55432, "nats": 54222}


def add_parser(subparsers: Any) -> None:
    parser = subparsers.add_parser("stack", help="run PostgreSQL, NATS and all services locally (make run)")
    parser.add_argument("--var", type=Path, default=Path("var"), help="data directory (default ./var)")
    parser.add_argument("--units", type=int, default=100, help="quota units for the first local account")
    parser.set_defaults(handler=_run)


def _port(preferred: int) -> int:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", preferred))
            return preferred
        except OSError:
            return localstack.free_port()


def _ports(var: Path) -> dict[str, int]:
    state = var / "stack.json"
    if state.exists():
        saved: dict[str, int] = json.loads(state.read_text())
        return saved
    ports = {name: _port(p) for name, p in _PREFERRED.items()}
    state.write_text(json.dumps(ports))
    return ports


def _run(args: argparse.Namespace) -> int:
    var: Path = args.var.resolve()
    var.mkdir(parents=True, exist_ok=True)
    var.chmod(0o755)  # PostgreSQL runs as an unprivileged user and must reach its directory
    ports = _ports(var)
    pg = localstack.Postgres(var / "postgres", ports["postgres"])
    nats = localstack.Nats(var / "nats" / "jetstream", ports["nats"])
    children: list[subprocess.Popen[bytes]] = []
    try:
        pg.start()
        nats.start()
        env = {**os.environ, "CERTWATCH_DATABASE_URL": pg.url, "CERTWATCH_NATS_URL": nats.url,
               "CERTWATCH_LOG_FORMAT": os.environ.get("CERTWATCH_LOG_FORMAT", "text"),
               "CERTWATCH_MASTER_KEY": _master_key(var)}  # fmt: skip
        _ensure_credentials(var, env, args.units)
        logs = var / "logs"
        logs.mkdir(exist_ok=True)
        for name in SERVICE_PORTS:
            log = open(logs / f"{name}.log", "ab")  # noqa: SIM115 - the child owns it
            children.append(subprocess.Popen(
                [sys.executable, "-m", "certwatch.cli.main", "serve", name], env=env,
                stdout=log, stderr=log, start_new_session=True,
            ))  # fmt: skip
            log.close()
        _wait_listening(children)
        _banner(pg, nats, var)
        _wait_for_interrupt(children)
    finally:
        _stop_children(children)
        nats.stop()
        pg.stop()
        print("certwatch stopped; data kept in", var)
    return 0


def _master_key(var: Path) -> str:
    """The key that wraps every data key; losing it makes sealed data unreadable."""
    if os.environ.get("CERTWATCH_MASTER_KEY"):
        return os.environ["CERTWATCH_MASTER_KEY"]
    path = var / "master.key"
    if not path.exists():
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(new_master_key())
    return path.read_text().strip()


def _ensure_credentials(var: Path, env: dict[str, str], units: int) -> None:
    path = var / "credentials.json"
    if path.exists():
        return
    out = subprocess.run(
        [sys.executable, "-m", "certwatch.cli.main", "admin", "create-account", "local", "--admin"],
        env=env, capture_output=True, text=True, check=True,
    )  # fmt: skip
    created = json.loads(out.stdout)
    subprocess.run(
        [sys.executable, "-m", "certwatch.cli.main", "admin", "purchase", created["account_id"],
         "--domains", str(units)],
        env=env, capture_output=True, text=True, check=True,
    )  # fmt: skip
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as fh:
        json.dump({"api_key": created["api_key"], "account_id": created["account_id"],
                   "grpc_host": "127.0.0.1", "ports": dict(SERVICE_PORTS)}, fh, indent=2)  # fmt: skip


def _wait_listening(children: list[subprocess.Popen[bytes]], timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    for name, port in SERVICE_PORTS.items():
        while True:
            dead = [c for c in children if c.poll() is not None]
            if dead:
                raise SystemExit(f"a service exited while starting; see var/logs/{name}.log")
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
                break
            if time.monotonic() > deadline:
                raise SystemExit(f"{name} did not listen on {port}; see var/logs/{name}.log")
            time.sleep(0.1)


def _banner(pg: localstack.Postgres, nats: localstack.Nats, var: Path) -> None:
    lines = ["", "certwatch is running.", f"  PostgreSQL  {pg.url}", f"  NATS        {nats.url}"]
    lines += [f"  {name:<11} 127.0.0.1:{port} (gRPC)" for name, port in SERVICE_PORTS.items()]
    lines += [
        f"  API key     in {var / 'credentials.json'} (the CLI reads it)",
        f"  Logs        {var / 'logs'}/",
        "",
        "Try (in another terminal):",
        "  .venv/bin/certwatch check example.com",
        "  .venv/bin/certwatch domains add example.com --enable",
        "  .venv/bin/certwatch domains list",
        "",
        f"Ctrl-C stops everything; data stays in {var}.",
    ]
    print("\n".join(lines), flush=True)


def _wait_for_interrupt(children: list[subprocess.Popen[bytes]]) -> None:
    stop = False

    def _handler(signum: int, frame: Any) -> None:
        nonlocal stop
        stop = True

    signal.signal(signal.SIGINT, _handler)
    signal.signal(signal.SIGTERM, _handler)
    while not stop:
        if any(c.poll() is not None for c in children):
            print("a service exited unexpectedly; see var/logs/. Stopping.", file=sys.stderr)
            return
        time.sleep(0.5)


def _stop_children(children: list[subprocess.Popen[bytes]]) -> None:
    for child in children:
        if child.poll() is None:
            child.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + 20
    for child in children:
        try:
            child.wait(max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait(5)
