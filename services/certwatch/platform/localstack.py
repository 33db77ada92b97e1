"""PostgreSQL and NATS JetStream as local child processes, for `make run` and the tests.

Both come from the Debian packages (`postgresql`, `nats-server`). PostgreSQL refuses to run
as root, so when we are root it runs as the unprivileged `postgres` user (or `nobody`).
"""

from __future__ import annotations

import contextlib
import ctypes
import glob
import json
import os
import pwd
import random
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

NATS_BINARY_CANDIDATES = ("/usr/sbin/nats-server", "/usr/bin/nats-server")


class LocalStackError(RuntimeError):
    """A local server could not be started; the message says which and why."""


def die_with_parent() -> None:
    """In the child, before exec: get SIGTERM when the process that started us dies, so a
    killed test run or `make run` never leaves servers behind (Linux prctl PR_SET_PDEATHSIG).
    The signal follows the starting *thread*: start servers from a thread that outlives them."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(1, signal.SIGTERM, 0, 0, 0)


def free_port(host: str = "127.0.0.1") -> int:
    """A port to listen on, free now, from below the kernel's ephemeral range when there is
    room: `bind(0)` draws from that range, and so does the local port of every outgoing
    connection (to PostgreSQL, NATS...), so a port found free there can be taken by a client
    before its server binds it (seen: a test stack's gRPC bind failing, "address in use")."""
    low, high = _listen_range()
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    if len(_HANDED_OUT) > (high - low) // 2:
        _HANDED_OUT.clear()
    for _ in range(200 if high > low else 0):
        port = random.randrange(low, high)
        if port in _HANDED_OUT:  # free again until its server binds it: not for a second caller
            continue
        with socket.socket(family, socket.SOCK_STREAM) as sock:
            try:
                sock.bind((host, port))
            except OSError:
                continue
        _HANDED_OUT.add(port)
        return port
    with socket.socket(family, socket.SOCK_STREAM) as sock:  # no room below it: the kernel's pick
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


_HANDED_OUT: set[int] = set()


def _listen_range() -> tuple[int, int]:
    """[10000, start of the ephemeral range), or an empty range when it starts lower."""
    try:
        ephemeral_start = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 0, 0
    return 10000, ephemeral_start


def _wait_port(host: str, port: int, proc: subprocess.Popen[bytes], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise LocalStackError(f"{what} exited with status {proc.returncode} while starting")
        with contextlib.suppress(OSError), socket.create_connection((host, port), timeout=0.2):
            return
        time.sleep(0.05)
    raise LocalStackError(f"{what} did not open {host}:{port} within {timeout:.0f}s")


def postgres_bindir() -> Path:
    """The newest installed PostgreSQL server's bin directory."""
    dirs = sorted(
        glob.glob("/usr/lib/postgresql/*/bin"),
        key=lambda d: int(Path(d).parent.name) if Path(d).parent.name.isdigit() else 0,
    )
    for candidate in reversed(dirs):
        if (Path(candidate) / "postgres").exists():
            return Path(candidate)
    raise LocalStackError("PostgreSQL server binaries not found: apt-get install postgresql")


def nats_binary() -> str:
    for candidate in NATS_BINARY_CANDIDATES:
        if os.path.exists(candidate):
            return candidate
    found = shutil.which("nats-server")
    if found:
        return found
    raise LocalStackError("nats-server not found: apt-get install nats-server")


def _unprivileged_user() -> pwd.struct_passwd | None:
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "nobody"):
        with contextlib.suppress(KeyError):
            return pwd.getpwnam(name)
    raise LocalStackError("running as root and no 'postgres' or 'nobody' user exists")


def _kill(proc: subprocess.Popen[bytes] | None) -> None:
    if proc is not None and proc.poll() is None:
        proc.kill()
        proc.wait(10)


def _check_reachable(directory: Path) -> None:
    """PostgreSQL runs as another user when we are root: every directory on the way to its
    data must let that user through, or initdb fails with a bare "Permission denied"."""
    user = _unprivileged_user()
    assert user is not None
    for step in [*reversed(directory.parents), directory]:
        if not step.is_dir():
            return  # created below, by us, open to others
        probe = subprocess.run(
            ["test", "-x", str(step)], user=user.pw_uid, group=user.pw_gid, extra_groups=[]
        )
        if probe.returncode != 0:
            mode = step.stat().st_mode & 0o777
            raise LocalStackError(
                f"PostgreSQL runs as the user {user.pw_name!r} (certwatch runs as root), which cannot"
                f" enter {step} (mode {mode:o}): choose a --var elsewhere, or let it through with"
                f" `chmod o+x {step}`"
            )


@dataclass
class Postgres:
    """A private PostgreSQL cluster: `initdb` once, then `postgres` in the foreground."""

    data_dir: Path
    port: int
    host: str = "127.0.0.1"
    fast_unsafe: bool = False
    proc: subprocess.Popen[bytes] | None = None
    output: int | None = None  # descriptor for its stdout and stderr; default server.log

    @property
    def url(self) -> str:
        return f"postgresql://certwatch@{self.host}:{self.port}/certwatch"

    def _demote(self) -> dict[str, int]:
        """`user`/`group` for subprocess when we are root (PostgreSQL refuses to run as root)."""
        user = _unprivileged_user()
        return {} if user is None else {"user": user.pw_uid, "group": user.pw_gid}

    def start(self, timeout: float = 60.0) -> None:
        """Start and wait until the database accepts connections; on failure nothing is left running."""
        try:
            self._start(timeout)
        except BaseException:
            _kill(self.proc)
            raise

    def _start(self, timeout: float) -> None:
        bindir = postgres_bindir()
        demote = self._demote()
        if demote:
            _check_reachable(self.data_dir.parent)
        self.data_dir.mkdir(parents=True, exist_ok=True)
        socket_dir = self.data_dir / "sock"
        if demote:
            os.chown(self.data_dir, demote["user"], demote["group"])
        if not (self.data_dir / "PG_VERSION").exists():
            init = subprocess.run(
                [str(bindir / "initdb"), "-D", str(self.data_dir), "-U", "certwatch",
                 "--auth=trust", "-E", "UTF8", "--no-locale", "--no-sync"],
                cwd=self.data_dir, capture_output=True, text=True, user=demote.get("user"), group=demote.get("group"),
            )  # fmt: skip
            if init.returncode != 0:
                raise LocalStackError(f"initdb failed: {init.stderr.strip()}")
        socket_dir.mkdir(exist_ok=True)
        if demote:
            os.chown(socket_dir, demote["user"], demote["group"])
        args = [
            str(bindir / "postgres"), "-D", str(self.data_dir), "-p", str(self.port),
            "-c", f"listen_addresses={self.host}", "-c", f"unix_socket_directories={socket_dir}",
            "-c", "max_connections=200", "-c", "shared_buffers=128MB",
        ]  # fmt: skip
        if self.fast_unsafe:
            args += [
                "-c",
                "fsync=off",
                "-c",
                "synchronous_commit=off",
                "-c",
                "full_page_writes=off",
            ]
        log = self.output if self.output is not None else open(self.data_dir / "server.log", "ab")  # noqa: SIM115
        self.proc = subprocess.Popen(
            args,
            stdout=log,
            stderr=log,
            cwd=self.data_dir,
            start_new_session=True,
            user=demote.get("user"),
            group=demote.get("group"),
            preexec_fn=die_with_parent,  # runs after the switch to the unprivileged user
        )
        if not isinstance(log, int):
            log.close()
        _wait_port(self.host, self.port, self.proc, timeout, "postgres")
        self._create_database(bindir, timeout)

    def _create_database(self, bindir: Path, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while True:
            probe = subprocess.run(
                [str(bindir / "psql"), "-h", self.host, "-p", str(self.port), "-U", "certwatch",
                 "-d", "postgres", "-tAc", "SELECT 1 FROM pg_database WHERE datname='certwatch'"],
                capture_output=True, text=True,
            )  # fmt: skip
            if probe.returncode == 0:
                break
            if time.monotonic() > deadline:
                raise LocalStackError(f"postgres not ready: {probe.stderr.strip()}")
            time.sleep(0.1)
        if probe.stdout.strip() != "1":
            subprocess.run(
                [str(bindir / "createdb"), "-h", self.host, "-p", str(self.port), "-U",
                 "certwatch", "certwatch"],
                check=True, capture_output=True,
            )  # fmt: skip

    def stop(self, timeout: float = 30.0) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGINT)  # "fast" shutdown: disconnects clients, then stops
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)


@dataclass
class Nats:
    """A NATS server with JetStream storing under `store_dir`; `config`, when given, is a
    configuration file that must say the same (a cluster node's routes are set there)."""

    store_dir: Path
    port: int
    host: str = "127.0.0.1"
    proc: subprocess.Popen[bytes] | None = None
    output: int | None = None  # descriptor for its stdout and stderr; default nats-PORT.log
    config: Path | None = None

    @property
    def url(self) -> str:
        return f"nats://{self.host}:{self.port}"

    def start(self, timeout: float = 30.0) -> None:
        """Start and wait until it listens; on failure nothing is left running."""
        self.store_dir.mkdir(parents=True, exist_ok=True)
        log = self.output
        if log is None:
            log = os.open(
                self.store_dir.parent / f"nats-{self.port}.log", os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644
            )
        args = ["-c", str(self.config)] if self.config else ["-js", "-sd", str(self.store_dir)]
        try:
            self.proc = subprocess.Popen(
                [nats_binary(), "-a", self.host, "-p", str(self.port), *args],
                stdout=log, stderr=log, start_new_session=True, preexec_fn=die_with_parent,
            )  # fmt: skip
        finally:
            if self.output is None:
                os.close(log)
        try:
            _wait_port(self.host, self.port, self.proc, timeout, "nats-server")
        except BaseException:
            _kill(self.proc)
            raise

    def kill(self) -> None:
        """SIGKILL, as a crash would: used by the failure tests."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)

    def stop(self, timeout: float = 15.0) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.terminate()
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()


@contextlib.contextmanager
def running(root: Path, *, fast_unsafe: bool = False) -> Iterator[tuple[Postgres, Nats]]:
    """Start both servers on free loopback ports under `root`; stop them on exit."""
    root.mkdir(parents=True, exist_ok=True)
    root.chmod(0o755)  # the unprivileged PostgreSQL user must reach its data directory
    pg = Postgres(root / "postgres", free_port(), fast_unsafe=fast_unsafe)
    nats = Nats(root / "nats" / "jetstream", free_port())
    try:
        pg.start()
        nats.start()
        yield pg, nats
    finally:
        nats.stop()
        pg.stop()


STATE_FILE = "stack.json"


def saved_ports(var: Path) -> dict[str, int]:
    """The ports `certwatch stack` last chose for `var` (PostgreSQL, NATS, each service)."""
    try:
        data = json.loads((var / STATE_FILE).read_text())
    except (OSError, ValueError):
        return {}
    if not isinstance(data, dict):
        return {}
    return {name: port for name, port in data.items() if isinstance(port, int)}


def save_ports(var: Path, ports: dict[str, int]) -> None:
    tmp = var / f"{STATE_FILE}.tmp"
    tmp.write_text(json.dumps(ports, indent=2))
    tmp.replace(var / STATE_FILE)


def port_is_free(port: int, host: str = "127.0.0.1") -> bool:
    """Nothing listens on it (a port left in TIME_WAIT counts as free, as for a server)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
        return True
