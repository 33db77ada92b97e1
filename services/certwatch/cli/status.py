"""`certwatch status`: is monitoring flowing? Every service's health, every projection's lag,
the outbox relay, the prober's backlog; what is stuck, since when, and why.

A service that does not answer within `TIMEOUT_S` counts as unhealthy. Exit status 1 when
anything is unhealthy, so the command works in a cron job or a readiness script. The same
reading warns under `domains list` and `domains show` when the verdicts shown may be old.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import grpc
import httpx
from grpc_health.v1 import health_pb2, health_pb2_grpc

from certwatch.cli.client import (
    CliError,
    add_connection_options,
    address,
    as_json,
    connect,
    describe,
    fail,
    table,
)
from certwatch.services import HTTP_SERVICES, PORTS
from certwatch.v1 import ops_pb2 as pb
from certwatch.v1 import ops_pb2_grpc

TIMEOUT_S = 2.0
# Services whose parts decide what `domains list` shows.
_VERDICT_PATH = ("inventory", "prober", "classifier")
# Events (or observations) behind before a list says its verdicts may be stale; the
# prober's overdue domains count from one (its backlog is already past a grace period).
_BEHIND = 100


@dataclass
class Reading:
    service: str
    health: str  # SERVING, NOT_SERVING, or why there was no answer
    status: pb.ServiceStatus | None = None
    error: str = ""
    problems: list[str] = field(default_factory=list)
    refused: str = ""  # the caller's own mistake (no key, a bad key, a missing file): exit 2

    @property
    def healthy(self) -> bool:
        return self.health == "SERVING" and not self.problems


def add_parser(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "status", help="health of every service, projection lag, what is stuck",
        description="Every service's health, each projection's and the outbox relay's lag, the"
        " prober's backlog, and the last error of anything stuck. Exit 1 when anything is unhealthy.",
    )  # fmt: skip
    add_connection_options(parser)
    parser.set_defaults(handler=_status)


def _read_http(args: argparse.Namespace, service: str) -> Reading:
    """A service whose edge is HTTP (the console): its health is `GET /healthz`."""
    try:
        answer = httpx.get(f"http://{address(args, service)}/healthz", timeout=TIMEOUT_S)
    except CliError as exc:
        return Reading(service, "UNKNOWN", error=str(exc), problems=[str(exc)], refused=str(exc))
    except httpx.HTTPError:
        return Reading(service, "UNREACHABLE", error=f"unreachable within {TIMEOUT_S:.0f} s",
                       problems=[f"{service}: unreachable"])  # fmt: skip
    health = answer.text.strip() if answer.text.strip() in ("SERVING", "NOT_SERVING") else "UNKNOWN"
    return Reading(service, health, problems=[] if health == "SERVING" else [f"{service} is {health}"])


def _read(args: argparse.Namespace, service: str) -> Reading:
    if service in HTTP_SERVICES:
        return _read_http(args, service)
    try:
        channel, metadata = connect(args, service)
    except CliError as exc:
        return Reading(service, "UNKNOWN", error=str(exc), problems=[str(exc)], refused=str(exc))
    with channel:
        try:
            check = health_pb2_grpc.HealthStub(channel).Check(
                health_pb2.HealthCheckRequest(), timeout=TIMEOUT_S
            )
            health = health_pb2.HealthCheckResponse.ServingStatus.Name(check.status)
        except grpc.RpcError as exc:
            why = "no answer" if exc.code() == grpc.StatusCode.DEADLINE_EXCEEDED else "unreachable"
            return Reading(service, why.upper().replace(" ", "_"), error=f"{why} within {TIMEOUT_S:.0f} s",
                           problems=[f"{service}: {why}"])  # fmt: skip
        try:
            status = ops_pb2_grpc.OpsStub(channel).GetServiceStatus(
                pb.ServiceStatusRequest(), metadata=metadata, timeout=TIMEOUT_S
            )
        except grpc.RpcError as exc:
            refused = describe(exc) if exc.code() == grpc.StatusCode.UNAUTHENTICATED else ""
            return Reading(service, health, error=exc.details() or exc.code().name,
                           problems=[f"{service}: status unavailable ({exc.details()})"], refused=refused)  # fmt: skip
    reading = Reading(service, health, status)
    if health != "SERVING":
        reading.problems.append(f"{service} is {health}")
    for c in status.components:
        if not c.healthy:  # the relay is one for the system: its problem, said once, has no age
            reading.problems.append(f"{c.name} {_state(c, with_age=c.kind != 'relay')}")
    return reading


def read_all(args: argparse.Namespace, services: Iterable[str] = tuple(PORTS)) -> list[Reading]:
    names = list(services)
    with ThreadPoolExecutor(len(names)) as pool:
        return list(pool.map(lambda s: _read(args, s), names))


def _ago(stamp: Any, now: datetime) -> str:
    seconds = max(0, int((now - stamp.ToDatetime(tzinfo=UTC)).total_seconds()))
    return (
        f"{seconds}s" if seconds < 120 else f"{seconds // 60}m" if seconds < 7200 else f"{seconds // 3600}h"
    )


def _state(c: pb.Component, now: datetime | None = None, *, with_age: bool = True) -> str:
    now = now or datetime.now(UTC)
    if c.last_error:
        since = f" since {_ago(c.failing_since, now)} ago" if with_age and c.HasField("failing_since") else ""
        return f"failing{since}: {c.last_error}"
    if c.healthy:
        return "ok" if c.lag == 0 else "catching up"
    last = (
        f"last progress {_ago(c.last_progress_at, now)} ago"
        if c.HasField("last_progress_at")
        else "no progress"
    )
    return f"stuck ({last})"


def _lag(c: pb.Component) -> str:
    return f"{c.lag:,}{'+' if c.lag_capped else ''}"


def _rows(readings: list[Reading]) -> list[list[str]]:
    rows: list[list[str]] = []
    relay: tuple[str, pb.Component] | None = None
    for r in readings:
        if r.status is None:
            rows.append([r.service, r.health, "-", "-", r.error])
            continue
        now = r.status.now.ToDatetime(tzinfo=UTC)
        rows.append([r.service, r.health, "", "", ""])
        for c in r.status.components:
            if c.kind == "relay":  # one relay for the whole system: shown once, its worst reading
                if relay is None or (relay[1].healthy and not c.healthy) or c.lag > relay[1].lag:
                    relay = (r.service, c)
                continue
            rows.append(["", "", c.name, _lag(c), _state(c, now) + (f" ({c.detail})" if c.detail else "")])
    if relay is not None:
        rows.append(["(all)", "", relay[1].name, _lag(relay[1]), _state(relay[1])])
    return rows


def _status(args: argparse.Namespace) -> int:
    readings = read_all(args)
    refused = next((r.refused for r in readings if r.refused), "")
    if refused:
        return fail(refused)
    if args.json:
        print(json.dumps([{
            "service": r.service, "health": r.health, "healthy": r.healthy, "problems": r.problems,
            "error": r.error or None,
            "status": as_json(r.status) if r.status else None,
        } for r in readings], indent=2))  # fmt: skip
    else:
        print(table(_rows(readings), ["SERVICE", "HEALTH", "COMPONENT", "LAG", "STATE"]))
        problems = list(dict.fromkeys(p for r in readings for p in r.problems))
        if problems:
            print("\nunhealthy: " + "; ".join(problems))
    return 0 if all(r.healthy for r in readings) else 1


def staleness_warning(args: argparse.Namespace) -> str | None:
    """One line for `domains list`/`show` when what they show may be old, else None."""
    problems: list[str] = []
    for r in read_all(args, _VERDICT_PATH):
        problems += r.problems
        if r.status is not None:
            problems += [f"{c.name} is {_lag(c)} behind" for c in r.status.components
                         if c.healthy and c.kind != "relay" and c.lag >= (1 if c.name == "scheduler" else _BEHIND)]  # fmt: skip
    if not problems:
        return None
    unique = "; ".join(dict.fromkeys(problems))
    return f"warning: the statuses shown may be stale: {unique} (see `certwatch status`)"
