"""The whole certwatch stack as it runs for real: one `certwatch serve NAME` process each.

`running_stack` (in-process) is quicker to start, but there all six services share one
event loop and one core; throughput and latency under load are measured here, where each
service has its own process as under `make run` or Kubernetes.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, replace
from pathlib import Path

import grpc
import httpx
from grpc_health.v1 import health_pb2, health_pb2_grpc

from certwatch.platform.config import Settings
from certwatch.platform.localstack import free_port
from certwatch.platform.shredding import new_master_key
from certwatch.services import HTTP_SERVICES, PORTS
from tests.support.stack import new_account

START_TIMEOUT_S = 60.0


@dataclass
class ProcessStack:
    settings: Settings
    ports: dict[str, int]
    api_key: str
    account_id: str
    logs: Path

    def channel(self, service: str) -> grpc.aio.Channel:
        return grpc.aio.insecure_channel(f"127.0.0.1:{self.ports[service]}")

    @property
    def vod_endpoint(self) -> str:
        """HOST:PORT of the VOD HTTP API, as the Alibaba Cloud SDK's `Config(endpoint=...)` takes it."""
        return f"127.0.0.1:{self.settings.vod_http_port}"

    @property
    def metadata(self) -> tuple[tuple[str, str], ...]:
        return (("authorization", f"Bearer {self.api_key}"),)


def settings_env(s: Settings, ports: dict[str, int]) -> dict[str, str]:
    """The `CERTWATCH_*` environment that `config.load(ports=PORTS)` turns back into `s`."""
    env = {
        "CERTWATCH_DATABASE_URL": s.database_url, "CERTWATCH_NATS_URL": s.nats_url,
        "CERTWATCH_LOG_LEVEL": s.log_level, "CERTWATCH_LOG_FORMAT": s.log_format,
        "CERTWATCH_PROBE_INTERVAL_S": str(s.probe_interval_s), "CERTWATCH_PROBE_JITTER_S": str(s.probe_jitter_s),
        "CERTWATCH_PROBE_CONCURRENCY": str(s.probe_concurrency),
        "CERTWATCH_PROBE_CONNECT_TIMEOUT_S": str(s.probe_connect_timeout_s),
        "CERTWATCH_PROBE_HANDSHAKE_TIMEOUT_S": str(s.probe_handshake_timeout_s),
        "CERTWATCH_ALLOW_NETWORKS": ",".join(str(n) for n in s.allow_networks),
        "CERTWATCH_RESOLVE": " ".join(s.resolve_overrides), "CERTWATCH_DNS_SERVERS": ",".join(s.dns_servers),
        "CERTWATCH_CA_FILE": s.ca_file or "", "CERTWATCH_SHUTDOWN_GRACE_S": str(s.shutdown_grace_s),
        "CERTWATCH_MASTER_KEY": s.master_key or "", "CERTWATCH_OTLP_ENDPOINT": s.otlp_endpoint or "",
        "CERTWATCH_ALLOW_CUSTOM_WEBHOOKS": "1" if s.allow_custom_webhooks else "",
        "CERTWATCH_SMTP_HOST": s.smtp_host or "", "CERTWATCH_SMTP_PORT": str(s.smtp_port),
        "CERTWATCH_SMTP_USER": s.smtp_user or "", "CERTWATCH_SMTP_PASSWORD": s.smtp_password or "",
        "CERTWATCH_SMTP_TLS": s.smtp_tls, "CERTWATCH_SMTP_CA_FILE": s.smtp_ca_file or "",
        "CERTWATCH_SMTP_FROM": s.smtp_from,
        "CERTWATCH_VOD_HTTP_PORT": str(s.vod_http_port), "CERTWATCH_VOD_REGION": s.vod_region,
        "CERTWATCH_VOD_CNAME_SUFFIX": s.vod_cname_suffix or "", "CERTWATCH_VOD_RATE": str(s.vod_rate),
        "CERTWATCH_VOD_BURST": str(s.vod_burst),
    }  # fmt: skip
    env.update({f"CERTWATCH_{name.upper()}_PORT": str(port) for name, port in ports.items()})
    return env


def _http_serving(port: int) -> bool:
    with contextlib.suppress(httpx.HTTPError):
        return httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).text == "SERVING"
    return False


def wait_serving(port: int, proc: subprocess.Popen[bytes], log: Path, *, http: bool = False) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while http and time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"service exited while starting: {log.read_text()[-2000:]}")
        if _http_serving(port):
            return
        time.sleep(0.1)
    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise RuntimeError(f"service exited while starting: {log.read_text()[-2000:]}")
            with contextlib.suppress(grpc.RpcError):
                if (
                    stub.Check(health_pb2.HealthCheckRequest(), timeout=1).status
                    == health_pb2.HealthCheckResponse.SERVING
                ):
                    return
            time.sleep(0.1)
    raise RuntimeError(
        f"service on {port} not serving within {START_TIMEOUT_S:.0f}s: {log.read_text()[-2000:]}"
    )


def spawn(name: str, settings: Settings, ports: dict[str, int], log: Path) -> subprocess.Popen[bytes]:
    """`certwatch serve NAME` in its own process group, its output in `log`."""
    with open(log, "wb") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "certwatch.cli.main", "serve", name], env={**os.environ, **settings_env(settings, ports)},
            stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip


@contextlib.asynccontextmanager
async def process_stack(settings: Settings, *, units: int = 100) -> AsyncIterator[ProcessStack]:
    ports = {name: free_port() for name in PORTS}
    settings = replace(settings, grpc_ports=ports, vod_http_port=free_port(),
                       master_key=settings.master_key or new_master_key())  # fmt: skip
    account_id, key = await new_account(settings.database_url, f"acct-{time.monotonic_ns()}", units=units)
    logs = Path(tempfile.mkdtemp(prefix="certwatch-procs-"))
    procs: dict[str, subprocess.Popen[bytes]] = {}
    try:
        for name in PORTS:
            procs[name] = spawn(name, settings, ports, logs / f"{name}.log")
        for name, proc in procs.items():
            wait_serving(ports[name], proc, logs / f"{name}.log", http=name in HTTP_SERVICES)
        yield ProcessStack(settings, ports, key, account_id, logs)
    finally:
        for proc in procs.values():
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
        for proc in procs.values():
            try:
                proc.wait(timeout=settings.shutdown_grace_s + 5)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=5)
