"""How the CLI reaches the services: address and API key from flags, env or a credentials file.

Lookup order for the key: `--api-key`, `CERTWATCH_API_KEY`, then the credentials file
(`--credentials`, `CERTWATCH_CREDENTIALS`, `./var/credentials.json` written by `make run`,
`~/.config/certwatch/credentials.json`).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import grpc
from google.protobuf.json_format import MessageToDict
from google.rpc import error_details_pb2, status_pb2

from certwatch.rules.targets import ValidationError, unicode_hostname, validate_port
from certwatch.services import PORTS

_DEFAULT_FILES = (Path("var/credentials.json"), Path.home() / ".config/certwatch/credentials.json")


class CliError(Exception):
    """Printed as `certwatch: <message>` with exit status 2."""


def add_connection_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--api-key", help="API key (default: $CERTWATCH_API_KEY or the credentials file)")
    parser.add_argument("--credentials", help="credentials file written by `make run` or `certwatch admin`")
    parser.add_argument("--server", help="HOST:PORT of the service (default: from the credentials file)")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")


def _credentials(args: argparse.Namespace) -> dict[str, Any]:
    explicit = args.credentials or os.environ.get("CERTWATCH_CREDENTIALS")
    candidates = [Path(explicit)] if explicit else list(_DEFAULT_FILES)
    for path in candidates:
        if path.exists():
            try:
                data: dict[str, Any] = json.loads(path.read_text())
            except (OSError, ValueError) as exc:
                raise CliError(f"cannot read credentials file {path}: {exc}") from exc
            return data
    if explicit:
        raise CliError(f"credentials file {explicit} does not exist")
    return {}


def connect(args: argparse.Namespace, service: str) -> tuple[grpc.Channel, tuple[tuple[str, str], ...]]:
    creds = _credentials(args)
    key = args.api_key or os.environ.get("CERTWATCH_API_KEY") or creds.get("api_key")
    if not key:
        raise CliError(
            "no API key: pass --api-key, set CERTWATCH_API_KEY, or run `make run` (it writes"
            " var/credentials.json)"
        )
    return grpc.insecure_channel(address(args, service, creds)), (("authorization", f"Bearer {key}"),)


def address(args: argparse.Namespace, service: str, creds: dict[str, Any] | None = None) -> str:
    """HOST:PORT of a service: `--server`, `CERTWATCH_<SERVICE>_ADDR`, else the credentials file."""
    server = args.server or os.environ.get(f"CERTWATCH_{service.upper()}_ADDR")
    if server:
        return str(server)
    creds = _credentials(args) if creds is None else creds
    return f"{creds.get('grpc_host', '127.0.0.1')}:{creds.get('ports', {}).get(service, PORTS[service])}"


def call(fn: Callable[..., Any], request: Any, metadata: Any) -> Any:
    """Make one RPC; turn gRPC errors into messages that say what to do."""
    try:
        return fn(request, metadata=metadata, timeout=30)
    except grpc.RpcError as exc:
        raise CliError(describe(exc)) from None


def describe(exc: grpc.RpcError) -> str:
    code = exc.code()
    message = exc.details()
    if code == grpc.StatusCode.UNAVAILABLE:
        if message and "database" in message:  # the service answered: its database did not
            return f"service unavailable: {message}"
        return f"cannot reach the service ({message}); is `make run` running?"
    if code == grpc.StatusCode.UNAUTHENTICATED:
        return f"not authenticated: {message}; check your API key"
    lines = [f"{code.name.lower().replace('_', ' ')}: {message}"]
    for key, value in exc.trailing_metadata() or ():
        if key == "grpc-status-details-bin":
            status = status_pb2.Status.FromString(value)
            for detail in status.details:
                bad = error_details_pb2.BadRequest()
                if detail.Unpack(bad):
                    lines = [f"{v.field}: {v.description}" for v in bad.field_violations]
                    lines[0] = f"invalid request: {lines[0]}"
    return "; ".join(lines)


def target_label(host: str, port: int) -> str:
    """``host:port`` as a user reads it: IPv6 in brackets, a punycode name with its Unicode
    form beside it (``xn--bcher-kva.example:443 (bücher.example)``)."""
    shown = unicode_hostname(host)
    authority = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    return authority if shown == host else f"{authority} ({shown})"


def as_json(message: Any) -> dict[str, Any]:
    """A message as JSON fields, every one of them: protobuf's JSON leaves out a field at its
    default (false, 0, "", []), so `--json` readers would find no `monitoring_enabled` on a
    disabled domain. Unset messages and optional fields stay out (they have no value)."""
    data: dict[str, Any] = MessageToDict(
        message, preserving_proto_field_name=True, always_print_fields_with_no_presence=True
    )
    return data


def with_unicode_host(message: Any) -> dict[str, Any]:
    """A domain as JSON fields (`as_json`), plus ``host_unicode`` when its ``host`` is
    punycode; ``days_left`` is null when there is no count (``has_days_left`` false)."""
    data = as_json(message)
    if data.get("has_days_left") is False:
        data["days_left"] = None
    host = data.get("host")
    if isinstance(host, str) and unicode_hostname(host) != host:
        data["host_unicode"] = unicode_hostname(host)
    return data


_INT32_MAX = 2**31 - 1


def whole_number(text: str) -> int:
    """An argparse type: an integer that fits the protobuf int32 fields it is sent in."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if not -_INT32_MAX <= value <= _INT32_MAX:
        raise argparse.ArgumentTypeError(f"{value} is out of range")
    return value


def positive_int(text: str) -> int:
    """An argparse type: a whole number of at least 1 (protobuf's unsigned fields refuse less)."""
    value = whole_number(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def port_number(text: str) -> int:
    """An argparse type: a TCP port, by the rule `domains add` applies to entries."""
    try:
        return validate_port(text, field="--port")
    except ValidationError as exc:
        raise argparse.ArgumentTypeError(exc.message) from None


def fail(message: str) -> int:
    """Print a refusal as one line (a server message may hold newlines) and return status 2."""
    print(f"certwatch: {' '.join(message.split())}", file=sys.stderr)
    return 2


def table(rows: list[list[str]], header: list[str]) -> str:
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    out = ["  ".join(str(c).ljust(w) for c, w in zip(header, widths, strict=True)).rstrip()]
    out += ["  ".join(str(c).ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows]
    return "\n".join(out)
