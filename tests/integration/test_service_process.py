"""A service as an OS process: answers health checks, stops cleanly on SIGTERM; mutual TLS."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from certwatch.platform.localstack import Nats, free_port
from certwatch.platform.shredding import new_master_key
from tests.support.pki import TestPKI


def _wait_serving(channel: grpc.Channel, timeout: float = 30.0) -> None:
    stub = health_pb2_grpc.HealthStub(channel)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            reply = stub.Check(health_pb2.HealthCheckRequest(), timeout=1)
            if reply.status == health_pb2.HealthCheckResponse.SERVING:
                return
        except grpc.RpcError:
            pass
        time.sleep(0.1)
    raise AssertionError("service never became SERVING")


def _serve(service: str, env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with open(log, "wb") as out:
        return subprocess.Popen([sys.executable, "-m", "certwatch.cli.main", "serve", service],
                                env={**os.environ, **env}, stdout=out, stderr=subprocess.STDOUT)  # fmt: skip


def test_sigterm_stops_the_service_gracefully(database_url: str, nats_server: Nats, tmp_path: Path) -> None:
    port = free_port()
    env = {"CERTWATCH_DATABASE_URL": database_url, "CERTWATCH_NATS_URL": nats_server.url,
           "CERTWATCH_INVENTORY_PORT": str(port), "CERTWATCH_MASTER_KEY": new_master_key(),
           "CERTWATCH_LOG_FORMAT": "json"}  # fmt: skip
    proc = _serve("inventory", env, tmp_path / "log")
    try:
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            _wait_serving(channel)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(20) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(5)
    log = (tmp_path / "log").read_text()
    assert '"msg": "inventory stopped"' in log, log[-2000:]


def test_missing_master_key_is_a_clear_startup_error(
    database_url: str, nats_server: Nats, tmp_path: Path
) -> None:
    env = {"CERTWATCH_DATABASE_URL": database_url, "CERTWATCH_NATS_URL": nats_server.url,
           "CERTWATCH_INVENTORY_PORT": str(free_port()), "CERTWATCH_MASTER_KEY": ""}  # fmt: skip
    proc = _serve("inventory", env, tmp_path / "log")
    assert proc.wait(30) != 0
    assert "CERTWATCH_MASTER_KEY" in (tmp_path / "log").read_text()


def test_mutual_tls_refuses_clients_without_a_certificate(
    database_url: str, nats_server: Nats, tmp_path: Path
) -> None:
    with TestPKI() as pki:
        server = pki.leaf("localhost", dns=("localhost",), ips=("127.0.0.1",))
        client = pki.leaf("client", client=True)
        cert = pki.write("server.pem", server.pem + pki.intermediate.pem)
        key = pki.write("server.key", server.key_pem)
        ca = pki.write("ca.pem", pki.root.pem + pki.intermediate.pem)
        port = free_port()
        env = {"CERTWATCH_DATABASE_URL": database_url, "CERTWATCH_NATS_URL": nats_server.url,
               "CERTWATCH_CLASSIFIER_PORT": str(port), "CERTWATCH_TLS_CERT_FILE": cert,
               "CERTWATCH_TLS_KEY_FILE": key, "CERTWATCH_TLS_CLIENT_CA_FILE": ca}  # fmt: skip
        proc = _serve("classifier", env, tmp_path / "log")
        try:
            good = grpc.ssl_channel_credentials(
                root_certificates=pki.root.pem, private_key=client.key_pem,
                certificate_chain=client.pem + pki.intermediate.pem,
            )  # fmt: skip
            with grpc.secure_channel(f"127.0.0.1:{port}", good,
                                     options=[("grpc.ssl_target_name_override", "localhost")]) as channel:  # fmt: skip
                _wait_serving(channel)
            anonymous = grpc.ssl_channel_credentials(root_certificates=pki.root.pem)
            override = [("grpc.ssl_target_name_override", "localhost")]
            with (
                grpc.secure_channel(f"127.0.0.1:{port}", anonymous, options=override) as channel,
                pytest.raises(grpc.RpcError),
            ):
                health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=3)
            with grpc.insecure_channel(f"127.0.0.1:{port}") as channel, pytest.raises(grpc.RpcError):
                health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=3)
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(20)
