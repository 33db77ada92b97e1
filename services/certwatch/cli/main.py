"""The ``certwatch`` command: one sub-command per module under ``certwatch.cli``."""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Sequence
from typing import NoReturn

# Each top-level command by the module that defines it, in `--help` order. A command's module
# is imported only when that command runs (or for `--help`): together they import psycopg,
# NATS, httpx and the prober, about 1 s of CPU at every start.
COMMANDS: dict[str, str] = {
    "check": "check", "domains": "domains", "contacts": "contacts", "alerts": "alerts",
    "quota": "quota", "accounts": "quota", "admin": "admin", "serve": "serve",
    "healthcheck": "healthcheck", "stack": "stack", "status": "status", "report": "report",
    "vod": "vod", "hosting": "hosting", "certs": "hosting",
}  # fmt: skip


class _Parser(argparse.ArgumentParser):
    """Usage errors in one line (exit 2), like every other refusal of the CLI; sub-commands
    inherit it, because argparse builds them with the parent's class."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: {message} (see `{self.prog} --help`)\n")


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The whole command line, or only what `command` needs (its module's commands)."""
    parser = _Parser(
        prog="certwatch",
        description="HTTPS and certificate monitoring. Start with `certwatch check example.com`.",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    wanted = COMMANDS.values() if command not in COMMANDS else (COMMANDS[command],)
    for module in dict.fromkeys(wanted):
        importlib.import_module(f"certwatch.cli.{module}").add_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    args = build_parser(argv[0] if argv else None).parse_args(argv)
    try:
        code = int(args.handler(args))
        sys.stdout.flush()
    except BrokenPipeError:
        # The reader went away (`| head`): say so once, and keep Python's exit-time flush of
        # the dead pipe from printing a second error.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        print("certwatch: output closed before everything was written", file=sys.stderr)
        return 2
    return code


if __name__ == "__main__":
    raise SystemExit(main())
