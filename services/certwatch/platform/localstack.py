"""PostgreSQL and NATS JetStream as local child processes, for `make run` and the tests.

Both come from the Debian packages (`postgresql`, `nats-server`). PostgreSQL refuses to run
as root, so when we are root it runs as the unprivileged `postgres` user (or `nobody`).
"""

from __future__ import annotations

import contextlib
import ctypes
import glob
import os
import pwd
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


def _die_with_parent() -> None:
    """In the child, before exec: get SIGTERM when the process that started us dies, so a
    killed test run or `make run` never leaves servers behind (Linux prctl PR_SET_PDEATHSIG).
    The signal follows the starting *thread*: start servers from a thread that outlives them."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(1, signal.SIGTERM, 0, 0, 0)


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


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


@dataclass
class Postgres:
    """A private PostgreSQL cluster: `initdb` once, then `postgres` in the foreground."""

    data_dir: Path
    port: int
    host: str = "127.0.0.1"
    fast_unsafe: bool = False
    proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"postgresql://certwatch@{self.host}:{self.port}/certwatch"

    def _demote(self) -> dict[str, int]:
        """`user`/`group` for subprocess when we are root (PostgreSQL refuses to run as root)."""
        user = _unprivileged_user()
        return {} if user is None else {"user": user.pw_uid, "group": user.pw_gid}

    def start(self, timeout: float = 60.0) -> None:
        bindir = postgres_bindir()
        demote = self._demote()
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
        log = open(self.data_dir / "server.log", "ab")  # noqa: SIM115 - owned by the child
        self.proc = subprocess.Popen(
            args,
            stdout=log,
            stderr=log,
            cwd=self.data_dir,
            start_new_session=True,
            user=demote.get("user"),
            group=demote.get("group"),
            preexec_fn=_die_with_parent,  # runs after the switch to the unprivileged user
        )
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
    """A NATS server with JetStream storing under `store_dir`."""

    store_dir: Path
    port: int
    host: str = "127.0.0.1"
    proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"nats://{self.host}:{self.port}"

    def start(self, timeout: float = 30.0) -> None:
        self.store_dir.mkdir(parents=True, exist_ok=True)
        log = open(self.store_dir.parent / f"nats-{self.port}.log", "ab")  # noqa: SIM115
        self.proc = subprocess.Popen(
            [nats_binary(), "-a", self.host, "-p", str(self.port), "-js", "-sd", str(self.store_dir)],
            stdout=log, stderr=log, start_new_session=True, preexec_fn=_die_with_parent,
        )  # fmt: skip
        log.close()
        _wait_port(self.host, self.port, self.proc, timeout, "nats-server")

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
