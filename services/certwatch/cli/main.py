"""The ``certwatch`` command: one sub-command per module under ``certwatch.cli``."""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from certwatch.cli import admin, check, contacts, domains, quota, serve, stack, status


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="certwatch",
        description="HTTPS and certificate monitoring. Start with `certwatch check example.com`.",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    check.add_parser(sub)
    domains.add_parser(sub)
    contacts.add_parser(sub)
    quota.add_parser(sub)
    admin.add_parser(sub)
    serve.add_parser(sub)
    stack.add_parser(sub)
    status.add_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return int(args.handler(args))


if __name__ == "__main__":
    raise SystemExit(main())
