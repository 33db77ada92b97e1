"""`certwatch healthcheck [NAME]`: exit 0 when the service in this container is healthy.

The image's `HEALTHCHECK` (docker, compose). It asks the service's own health on loopback, the
same answer Kubernetes' probes get: `grpc.health.v1` SERVING for a gRPC service (it turns
NOT_SERVING when the database or NATS is unreachable or a worker is stuck), `GET /healthz`
200 for an HTTP one. NAME defaults to `CERTWATCH_SERVICE` (the image sets it).
"""

from __future__ import annotations

import argparse
import urllib.error
import urllib.request
from typing import Any

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from certwatch.cli.serve import configured
from certwatch.services import HTTP_SERVICES

TIMEOUT_S = 3.0


def add_parser(subparsers: Any) -> None:
    parser = subparsers.add_parser("healthcheck", help="exit 0 if the local service answers healthy")
    parser.add_argument("service", nargs="?", default=None, help="default: $CERTWATCH_SERVICE")
    parser.set_defaults(handler=_healthcheck)


def healthy(service: str, port: int, *, host: str = "127.0.0.1") -> tuple[bool, str]:
    """(healthy, what was seen) for `service` listening on `host:port`."""
    if service in HTTP_SERVICES:
        try:
            with urllib.request.urlopen(f"http://{host}:{port}/healthz", timeout=TIMEOUT_S) as response:
                return response.status == 200, f"HTTP {response.status}"
        except (urllib.error.URLError, OSError) as exc:
            return False, str(exc)
    with grpc.insecure_channel(f"{host}:{port}") as channel:
        try:
            status = health_pb2_grpc.HealthStub(channel).Check(
                health_pb2.HealthCheckRequest(), timeout=TIMEOUT_S
            )
        except grpc.RpcError as exc:
            return False, f"{exc.code().name}: {exc.details()}"
    name = health_pb2.HealthCheckResponse.ServingStatus.Name(status.status)
    return status.status == health_pb2.HealthCheckResponse.SERVING, name


def _healthcheck(args: argparse.Namespace) -> int:
    if (found := configured(args.service)) is None:
        return 2
    service, settings = found
    ok, seen = healthy(service, settings.grpc_ports[service])
    print(f"{service}: {seen}")
    return 0 if ok else 1
