"""The ``certwatch`` command: one sub-command per module under ``certwatch.cli``."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from typing import NoReturn

from certwatch.cli import (
    admin,
    alerts,
    check,
    contacts,
    domains,
    healthcheck,
    hosting,
    quota,
    report,
    serve,
    stack,
    status,
    vod,
)


class _Parser(argparse.ArgumentParser):
    """Usage errors in one line (exit 2), like every other refusal of the CLI; sub-commands
    inherit it, because argparse builds them with the parent's class."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: {message} (see `{self.prog} --help`)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="certwatch",
        description="HTTPS and certificate monitoring. Start with `certwatch check example.com`.",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    check.add_parser(sub)
    domains.add_parser(sub)
    contacts.add_parser(sub)
    alerts.add_parser(sub)
    quota.add_parser(sub)
    admin.add_parser(sub)
    serve.add_parser(sub)
    healthcheck.add_parser(sub)
    stack.add_parser(sub)
    status.add_parser(sub)
    report.add_parser(sub)
    vod.add_parser(sub)
    hosting.add_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
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
