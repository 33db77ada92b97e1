"""`certwatch serve NAME`: run one service until SIGTERM (what containers and `make run` start)."""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

from certwatch.platform import config
from certwatch.platform.service import main as run_service
from certwatch.services import MIGRATIONS, PORTS, SERVICES, build_for


def add_parser(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "serve", help="run one service (configured by CERTWATCH_* environment variables)",
        description="Run a certwatch service until SIGTERM/SIGINT. Settings come from CERTWATCH_*"
        " environment variables; see the README for each and its default.",
    )  # fmt: skip
    parser.add_argument("service", nargs="?", choices=sorted(SERVICES),
                        help="default: $CERTWATCH_SERVICE (what each container image sets)")  # fmt: skip
    parser.set_defaults(handler=_serve)


def service_named(given: str | None) -> str:
    """The service to act on: the argument, else `CERTWATCH_SERVICE`; `ConfigError` naming both."""
    name = given or os.environ.get("CERTWATCH_SERVICE", "")
    if name not in SERVICES:
        raise config.ConfigError(
            f"service: {name!r} is not one of {', '.join(sorted(SERVICES))} (give it, or set CERTWATCH_SERVICE)"
        )
    return name


def configured(given: str | None) -> tuple[str, config.Settings] | None:
    """The service and its settings; None after printing the one-line reason they are wrong."""
    try:
        return service_named(given), config.load(ports=PORTS)
    except config.ConfigError as exc:
        print(f"certwatch: {exc}", file=sys.stderr)
        return None


def _serve(args: argparse.Namespace) -> int:
    if (found := configured(args.service)) is None:
        return 2
    service, settings = found
    run_service(service, build_for(service), settings, MIGRATIONS)
    return 0
