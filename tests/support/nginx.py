"""Debian's nginx as a real TLS server for tests and benchmarks, a bounded context manager.

``nginx(certfile, keyfile)`` runs ``/usr/sbin/nginx`` as a child process in the foreground
(``daemon off``) with its own prefix, conf, pid file and logs in a temp dir, listening on
127.0.0.1:<free port> and serving the given chain and key (TLS 1.2/1.3, no session tickets
or cache: every handshake is full; every request gets 204). With ``stapling_file`` it
staples that DER OCSP response to every handshake whose client asks for one
(``ssl_stapling_file``; nginx refuses a file that is not a valid OCSP response). Start and
stop are bounded; without nginx installed the caller is skipped (``pytest.skip``).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import NamedTuple

from certwatch.platform.localstack import free_port

NGINX = "/usr/sbin/nginx"
START_TIMEOUT_S = 15.0
STOP_TIMEOUT_S = 10.0
_ATTEMPTS = 3  # a free port can be taken before nginx binds it: retry with another


class Nginx(NamedTuple):
    port: int
    workers: list[int]  # worker pids, as far as they had started


def wait_port(port: int, proc: subprocess.Popen[bytes], what: str, timeout: float = START_TIMEOUT_S) -> None:
    """Until something accepts on 127.0.0.1:port; raises if ``proc`` exits or time runs out."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited with {proc.returncode}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
            return
        time.sleep(0.05)
    raise RuntimeError(f"{what} did not listen on 127.0.0.1:{port} within {timeout:.0f}s")


def stop(proc: subprocess.Popen[bytes], sig: int = signal.SIGTERM) -> None:
    """Signal, wait (bounded), then kill."""
    if proc.poll() is None:
        proc.send_signal(sig)
        try:
            proc.wait(STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


def children(pid: int) -> list[int]:
    with contextlib.suppress(OSError):
        return [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    return []


def available() -> bool:
    return os.access(NGINX, os.X_OK)


def _conf(root: Path, port: int, certfile: str, keyfile: str, workers: int, stapling_file: str | None) -> str:
    stapling = (
        f"""
        ssl_stapling on;
        ssl_stapling_file {stapling_file};
        ssl_stapling_verify off;"""
        if stapling_file
        else ""
    )
    return f"""
daemon off;
master_process on;
worker_processes {workers};
pid {root}/nginx.pid;
error_log {root}/logs/error.log warn;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    client_body_temp_path {root}/tmp/body;
    proxy_temp_path {root}/tmp/proxy;
    fastcgi_temp_path {root}/tmp/fastcgi;
    uwsgi_temp_path {root}/tmp/uwsgi;
    scgi_temp_path {root}/tmp/scgi;
    server {{
        listen 127.0.0.1:{port} ssl backlog=4096;
        ssl_certificate {certfile};
        ssl_certificate_key {keyfile};
        ssl_protocols TLSv1.2 TLSv1.3;
        ssl_session_tickets off;
        ssl_session_cache off;{stapling}
        return 204;
    }}
}}
"""


def _stderr_tail(root: Path) -> str:
    text = ""
    for name in ("stderr.log", "error.log"):
        with contextlib.suppress(OSError):
            text += (root / "logs" / name).read_text(errors="replace")
    return text.strip()[-600:]


@contextlib.contextmanager
def nginx(
    certfile: str, keyfile: str, *, stapling_file: str | None = None, workers: int = 2
) -> Iterator[Nginx]:
    """Run nginx serving ``certfile`` (leaf first, then the chain) with ``keyfile``; yields
    (port, worker pids). Skips the calling test when nginx is not installed."""
    if not available():
        import pytest

        pytest.skip(f"{NGINX} is not installed (Debian package nginx; `make deps` installs it)")
    root = Path(tempfile.mkdtemp(prefix="certwatch-nginx-"))
    proc: subprocess.Popen[bytes] | None = None
    try:
        for sub in ("logs", "tmp"):
            (root / sub).mkdir()
        conf = root / "nginx.conf"
        for attempt in range(_ATTEMPTS):
            port = free_port()
            conf.write_text(_conf(root, port, certfile, keyfile, workers, stapling_file))
            with open(root / "logs" / "stderr.log", "wb") as stderr:
                proc = subprocess.Popen(
                    [NGINX, "-p", str(root), "-c", str(conf)],
                    stdout=subprocess.DEVNULL,
                    stderr=stderr,
                    start_new_session=True,
                )
            try:
                wait_port(port, proc, "nginx")
                break
            except RuntimeError as exc:
                stop(proc, signal.SIGQUIT)
                if attempt + 1 == _ATTEMPTS or "exited" not in str(exc):
                    raise RuntimeError(f"{exc}: {_stderr_tail(root)}") from None
        assert proc is not None
        deadline = time.monotonic() + 5
        while len(children(proc.pid)) < workers and time.monotonic() < deadline:
            time.sleep(0.05)
        yield Nginx(port, children(proc.pid))
    finally:
        if proc is not None:
            stop(proc, signal.SIGQUIT)
        shutil.rmtree(root, ignore_errors=True)
