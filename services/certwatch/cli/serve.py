"""`certwatch serve NAME`: run one service until SIGTERM (what containers and `make run` start)."""

from __future__ import annotations

import argparse
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
    parser.add_argument("service", choices=sorted(SERVICES))
    parser.set_defaults(handler=_serve)


def _serve(args: argparse.Namespace) -> int:
    try:
        settings = config.load(ports=PORTS)
    except config.ConfigError as exc:
        print(f"certwatch: {exc}")
        return 2
    run_service(args.service, build_for(args.service), settings, MIGRATIONS)
    return 0
