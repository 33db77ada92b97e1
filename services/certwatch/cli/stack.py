"""`certwatch stack`: the whole system on one machine, what `make run` starts.

PostgreSQL and NATS JetStream run as child processes with their data under `./var` (kept
between runs), then each service runs as its own `certwatch serve NAME` process. The stack
supervises them: a child that dies is restarted with backoff (and the stack stops, saying
why, when one keeps dying), and every child's output goes to a size-capped, rotated
`var/logs/<name>.log`. Only one stack runs per `var/` (`var/stack.pid` is locked).

Ports: `CERTWATCH_<SERVICE>_PORT` if set, else the ones saved in `var/stack.json`, else the
defaults, each replaced by a free one when taken. The first run creates a local account with
some quota, and a web console user; `var/credentials.json` holds the key, the ports and the
console's `console_user` and `console_password`, and the CLI reads it.
Ctrl-C stops everything: services first (graceful), then NATS, then PostgreSQL.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import fcntl
import json
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from certwatch.cli import admin
from certwatch.cli.client import CliError, fail
from certwatch.console import users
from certwatch.platform import auth, config, local_acme, localstack, logs
from certwatch.platform.errors import AlreadyExists
from certwatch.platform.events import stable_id
from certwatch.platform.shredding import new_master_key
from certwatch.platform.supervisor import Child, GiveUp, Supervisor
from certwatch.rules import quota
from certwatch.rules.targets import ValidationError
from certwatch.services import HTTP_SERVICES, PORTS

VOD_HTTP = "vod_http"  # the VOD HTTP API's port: CERTWATCH_VOD_HTTP_PORT, as CERTWATCH_<NAME>_PORT
# The local ACME CA (pebble) and what it validates with, when no CERTWATCH_ACME_DIRECTORY is given.
ACME_PORTS = {"acme": 14000, "acme_management": 15000, "acme_http01": 5002, "acme_dns": 8053,
              "acme_challtest": 8055}  # fmt: skip
PREFERRED_PORTS = {"postgres": 55432, "nats": 54222, **PORTS, VOD_HTTP: config.Settings().vod_http_port,
                   **ACME_PORTS}  # fmt: skip
LOCAL_ACCOUNT = "local"


def add_parser(subparsers: Any) -> None:
    parser = subparsers.add_parser("stack", help="run PostgreSQL, NATS and all services locally (make run)")
    parser.add_argument("--var", type=Path, default=Path("var"), help="data directory (default ./var)")
    parser.add_argument("--units", type=int, default=100, help="quota units for the first local account")
    parser.set_defaults(handler=_run)


def choose_ports(
    saved: Mapping[str, int],
    explicit: Mapping[str, int],
    is_free: Callable[[int], bool],
    pick: Callable[[], int],
) -> dict[str, int]:
    """A port for every child: the explicit one as given, else the saved one (the default on
    a first run) while it is free and not chosen for another; else `pick()` a free one."""
    chosen: dict[str, int] = {}
    for name, default in PREFERRED_PORTS.items():
        if name in explicit:
            chosen[name] = explicit[name]
            continue
        taken = set(chosen.values()) | set(explicit.values())
        port = saved.get(name, default)
        while port in taken or not is_free(port):
            port = pick()
        chosen[name] = port
    return chosen


def _explicit_ports(env: Mapping[str, str]) -> dict[str, int]:
    settings = config.load(env, ports=PORTS)
    ports = {**settings.grpc_ports, VOD_HTTP: settings.vod_http_port}
    return {name: ports[name] for name in ports if env.get(f"CERTWATCH_{name.upper()}_PORT")}


def _run(args: argparse.Namespace) -> int:
    try:
        units = quota.purchase_units(args.units)
        explicit = _explicit_ports(os.environ)
    except ValidationError as exc:
        v = exc.violations[0]
        return fail(f"--units: {v.description.removeprefix(v.field + ' ')}")
    except config.ConfigError as exc:
        return fail(str(exc))
    var: Path = args.var.resolve()
    var.mkdir(parents=True, exist_ok=True)
    var.chmod(0o755)  # PostgreSQL runs as an unprivileged user and must reach its directory
    try:
        lock = _lock(var)
    except CliError as exc:
        return fail(str(exc))
    try:
        return _supervise(var, units, explicit)
    finally:
        os.close(lock)


def _lock(var: Path) -> int:
    """Hold `var/stack.pid` locked while we run: a second stack on the same data refuses at
    once, instead of starting duplicate servers. The kernel drops the lock when we die."""
    fd = os.open(var / "stack.pid", os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        pid = os.read(fd, 32).decode(errors="replace").strip() or "unknown"
        os.close(fd)
        raise CliError(f"already running for {var}, pid {pid}; stop that one first") from None
    os.ftruncate(fd, 0)
    os.write(fd, f"{os.getpid()}\n".encode())
    return fd


def _supervise(var: Path, units: int, explicit: Mapping[str, int]) -> int:
    for name, port in explicit.items():
        if not localstack.port_is_free(port):
            return fail(f"CERTWATCH_{name.upper()}_PORT={port}: the port is in use")
    ports = choose_ports(localstack.saved_ports(var), explicit, localstack.port_is_free, localstack.free_port)
    localstack.save_ports(var, ports)
    pg = localstack.Postgres(var / "postgres", ports["postgres"])
    nats = localstack.Nats(var / "nats" / "jetstream", ports["nats"])
    services = {name: ports[name] for name in PORTS}
    env = {**os.environ, "CERTWATCH_DATABASE_URL": pg.url, "CERTWATCH_NATS_URL": nats.url,
           "CERTWATCH_MASTER_KEY": _master_key(var),
           "CERTWATCH_VOD_HTTP_PORT": str(ports[VOD_HTTP]),
           **{f"CERTWATCH_{name.upper()}_PORT": str(port) for name, port in services.items()}}  # fmt: skip
    acme = _local_acme(var, ports)
    if acme is not None:
        env.update(CERTWATCH_ACME_DIRECTORY=acme.directory, CERTWATCH_ACME_CA_FILE=acme.ca_file,
                   CERTWATCH_ACME_HTTP01_ADDR=f"127.0.0.1:{acme.http01_port}")  # fmt: skip
    (var / "logs").mkdir(exist_ok=True)
    stack_log = logs.RotatingFile(var / "logs" / "stack.log")

    def say(message: str) -> None:
        stamped = f"{time.strftime('%H:%M:%S')} {message}"
        print(f"certwatch stack: {stamped}", file=sys.stderr, flush=True)
        stack_log.write(f"{stamped}\n".encode())

    children = [_server("postgres", pg, tier=0), _server("nats", nats, tier=1)]
    children += _acme_children(acme) if acme is not None else []
    children += [_service(name, port, env) for name, port in services.items()]
    supervisor = Supervisor(children, var / "logs", say=say)
    for signum in (
        signal.SIGINT,
        signal.SIGTERM,
    ):  # SIGINT too: a shell starts background jobs with it ignored
        signal.signal(signum, _interrupt)
    code = 0
    try:
        for server in ("postgres", "nats"):
            try:
                supervisor.start(server)
            except localstack.LocalStackError as exc:
                tail = "".join(f"\n    {line}" for line in supervisor.tail(server))
                return fail(f"{server} did not start: {exc}{tail}")
        try:
            asyncio.run(_bootstrap(pg.url, var / "credentials.json", units, services))
        except CliError as exc:
            return fail(f"creating the local account: {exc}")
        for child in children[2:]:
            supervisor.start(child.name)
        announced = False
        while True:
            supervisor.poll()
            if not announced and supervisor.all_ready():
                _banner(pg, nats, var, services, ports[VOD_HTTP], env.get("CERTWATCH_LOG_FORMAT") or "json",
                        _acme_line(acme, env))  # fmt: skip
                announced = True
            time.sleep(0.2)
    except GiveUp as exc:
        say(f"stopping: {exc}")
        code = 1
    except KeyboardInterrupt:
        pass
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C must not cut the graceful stop short
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        supervisor.stop()
        stack_log.close()
        print("certwatch stopped; data kept in", var)
    return code


def _interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


def _server(name: str, server: localstack.Postgres | localstack.Nats, *, tier: int) -> Child:
    def spawn(output: int) -> subprocess.Popen[bytes]:
        server.output = output
        server.start()
        assert server.proc is not None
        return server.proc

    stop = signal.SIGINT if isinstance(server, localstack.Postgres) else signal.SIGTERM  # SIGINT: "fast" stop
    return Child(name, spawn, stop_signal=stop, tier=tier)


def _local_acme(var: Path, ports: Mapping[str, int]) -> local_acme.LocalAcme | None:
    """pebble on loopback, unless a CA is configured (or pebble is not installed)."""
    if os.environ.get("CERTWATCH_ACME_DIRECTORY") or not local_acme.available():
        return None
    return local_acme.LocalAcme(var / "pebble", ports["acme"], ports["acme_management"], ports["acme_http01"],
                                ports["acme_dns"], ports["acme_challtest"])  # fmt: skip


def _acme_children(acme: local_acme.LocalAcme) -> list[Child]:
    """pebble-challtestsrv (the DNS pebble resolves with), then pebble; both before the services."""

    def child(name: str, argv: Callable[[], list[str]], port: int) -> Child:
        return Child(name, lambda output: local_acme.spawn(argv(), acme.env(), output),
                     ready=lambda: _listening(port), tier=1)  # fmt: skip

    return [child("acme-dns", acme.challtestsrv_argv, acme.challtest_port),
            child("pebble", acme.pebble_argv, acme.port)]  # fmt: skip


def _acme_line(acme: local_acme.LocalAcme | None, env: Mapping[str, str]) -> str:
    if acme is None:
        directory = env.get("CERTWATCH_ACME_DIRECTORY")
        return (
            f"  ACME CA     {directory}"
            if directory
            else "  ACME CA     none (install pebble: hosting records applications only)"
        )
    root = acme.directory_path / "issuing-root.pem"
    with contextlib.suppress(OSError):
        root.write_bytes(acme.issuing_root())
    return (f"  ACME CA     {acme.directory} (pebble: http-01 answered on 127.0.0.1:{acme.http01_port},"
            f" every name resolves to 127.0.0.1; issuing root {root})")  # fmt: skip


def _listening(port: int) -> bool:
    with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
        return True
    return False


def _service(name: str, port: int, env: dict[str, str]) -> Child:
    def spawn(output: int) -> subprocess.Popen[bytes]:
        return subprocess.Popen(
            [sys.executable, "-m", "certwatch.cli.main", "serve", name], env=env, stdout=output,
            stderr=output, start_new_session=True, preexec_fn=localstack.die_with_parent,
        )  # fmt: skip

    return Child(name, spawn, ready=lambda: _listening(port), tier=2)


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


async def _bootstrap(url: str, path: Path, units: int, ports: dict[str, int]) -> None:
    """The local admin account, its key and quota, and the ports the CLI should use.

    Each step is recorded in the credentials file before the next, and the purchase has a
    fixed event id, so a start that failed half-way is completed by the next one."""
    creds: dict[str, Any] = {}
    with contextlib.suppress(FileNotFoundError):
        creds = json.loads(path.read_text())
    pool = await admin.connect(url)
    try:
        if "api_key" not in creds:
            account_id = await admin.account_named(pool, LOCAL_ACCOUNT)
            if account_id is None:  # else an earlier start created it and died before saving its key
                account_id, key = await admin.create_account(pool, LOCAL_ACCOUNT, admin=True)
            else:
                key = await auth.issue_key(pool, account_id, role="admin")
            creds = {"api_key": key, "account_id": str(account_id), "quota_purchased": False}
            _write_private(path, creds)
        if creds.get("quota_purchased") is False:
            account_id = uuid.UUID(creds["account_id"])
            await admin.record_purchase(
                pool, account_id, units, event_id=stable_id("stack-quota", account_id)
            )
            del creds["quota_purchased"]
        if "console_user" not in creds:
            password = users.new_password()
            user = await _console_user(pool, uuid.UUID(creds["account_id"]), password)
            creds.update(console_user=user, console_password=password)
            _write_private(path, creds)
    finally:
        await pool.close()
    _write_private(path, {**creds, "grpc_host": "127.0.0.1", "ports": ports})


async def _console_user(pool: Any, account_id: uuid.UUID, password: str) -> str:
    """The first console user, `admin` (another name if an earlier start made that one and
    died before saving its password)."""
    for name in ("admin", *(f"admin-{n}" for n in range(2, 100))):
        try:
            await users.add_user(pool, account_id, name, password)
        except AlreadyExists:
            continue
        return name
    raise CliError("could not create a console user: admin … admin-99 all exist")


def _write_private(path: Path, data: dict[str, Any]) -> None:
    tmp = path.with_name(f"{path.name}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        json.dump(data, fh, indent=2)
    tmp.replace(path)


def _how_the_cli_reads(credentials: Path) -> str:
    """The CLI finds ./var/credentials.json by itself; a stack run with another --var needs
    it named, else every command answers "no API key"."""
    if credentials.resolve() == Path("var/credentials.json").resolve():
        return "the CLI reads it"
    return f"for the CLI: export CERTWATCH_CREDENTIALS={credentials.resolve()}"


def _banner(
    pg: localstack.Postgres, nats: localstack.Nats, var: Path, services: dict[str, int], vod_http: int,
    log_format: str, acme_line: str,
) -> None:  # fmt: skip
    hint = " (JSON lines; CERTWATCH_LOG_FORMAT=text for plain text)" if log_format == "json" else ""
    lines = ["", "certwatch is running.", f"  PostgreSQL  {pg.url}", f"  NATS        {nats.url}"]
    lines += [f"  {name:<11} 127.0.0.1:{port} (gRPC)" for name, port in services.items()
              if name not in HTTP_SERVICES]  # fmt: skip
    lines += [f"  VOD API     http://127.0.0.1:{vod_http}/ (Alibaba Cloud VOD, `certwatch vod keys create`)"]
    lines += [acme_line]
    lines += [
        f"  Console     http://127.0.0.1:{services['console']}/ (sign in with console_user and"
        f" console_password from {var / 'credentials.json'})",
        f"  API key     in {var / 'credentials.json'} ({_how_the_cli_reads(var / 'credentials.json')})",
        f"  Logs        {var / 'logs'}/{hint}",
        "",
        "Try (in another terminal):",
        "  .venv/bin/certwatch check example.com",
        "  .venv/bin/certwatch domains add example.com --enable",
        "  .venv/bin/certwatch domains list",
        "  .venv/bin/certwatch hosting subscribe --years 2",
        "  .venv/bin/certwatch hosting apply INSTANCE_ID --domain shop.example.test --company Example"
        " --contact-email ops@example.test",
        "  .venv/bin/certwatch hosting list",
        "",
        f"Ctrl-C stops everything; data stays in {var}.",
    ]
    print("\n".join(lines), flush=True)
