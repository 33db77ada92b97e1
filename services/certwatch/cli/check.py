"""``certwatch check HOST[:PORT] ...``: probe and classify in-process, no services needed.

Useful on its own (a one-shot HTTPS health check, like the product's first check) and as
the quickest way to see exactly what the monitoring pipeline would conclude for a site.
"""

from __future__ import annotations

import argparse
import asyncio
import ipaddress
import json
import math
import os
import re
import sys
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

from certwatch.cli.client import target_label
from certwatch.platform import config
from certwatch.platform.config import ConfigError, Settings
from certwatch.platform.dns import parse_nameserver
from certwatch.prober.settings import parse_resolve
from certwatch.prober.tls_probe import ProbeOptions, probe
from certwatch.prober.trust import load_anchors
from certwatch.rules import targets as validation
from certwatch.rules.causes import Status
from certwatch.rules.classify import Verdict, classify
from certwatch.rules.facts import ProbeResult

DEFAULT_PORT = validation.DEFAULT_PORT
_URL = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://")
_CONCURRENCY = 256


class UsageError(ValueError):
    """A malformed command-line value (exit status 2)."""


def add_parser(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "check",
        help="probe HTTPS endpoints now and print their monitoring status",
        description="Probe each HOST[:PORT] (default port 443) on every resolved address "
        "and classify it as monitoring would. Exit 0 when all are SECURE, else 1.",
    )
    parser.add_argument("targets", nargs="+", metavar="HOST[:PORT]")
    parser.add_argument(
        "--resolve",
        action="append",
        default=[],
        metavar="HOST:PORT:ADDR[,ADDR...]",
        help="use these addresses for HOST:PORT instead of DNS (repeatable, like curl; IPv6 in brackets;"
        " default: CERTWATCH_RESOLVE)",
    )
    parser.add_argument(
        "--cacert", metavar="PATH",
        help='trust only the roots in this PEM file ("system": the OS bundle; default: CERTWATCH_CA_FILE)',
    )  # fmt: skip
    parser.add_argument(
        "--dns-server",
        action="append",
        default=[],
        metavar="IP[:PORT]",
        help="ask this DNS server instead of the system resolver (repeatable, tried in order;"
        " default: CERTWATCH_DNS_SERVERS)",
    )
    parser.add_argument(
        "--allow-network",
        action="append",
        default=[],
        metavar="CIDR",
        help="also probe addresses in this non-public network (repeatable); an IPv4 network also "
        "admits its IPv6 spellings (mapped, NAT64, 6to4, Teredo; default: CERTWATCH_ALLOW_NETWORKS)",
    )
    parser.add_argument("--timeout", type=float, default=10.0, help="seconds per target")
    parser.add_argument(
        "--first-check",
        action="store_true",
        help="classify as the check made when monitoring is enabled (ENABLE_FAILED causes)",
    )
    parser.add_argument("--no-ocsp", action="store_true", help="skip the OCSP revocation check")
    parser.add_argument("--json", action="store_true", help="print a JSON list")
    parser.epilog = (
        "Unset options take the environment the services read (CERTWATCH_RESOLVE, CERTWATCH_CA_FILE,"
        " CERTWATCH_DNS_SERVERS, CERTWATCH_ALLOW_NETWORKS), so a check agrees with monitoring; an"
        " option given replaces its variable."
    )
    parser.set_defaults(handler=run)


def parse_target(text: str) -> tuple[tuple[str, int], str | None]:
    """A target as `domains add` reads it (same rules, same refusals) → ((host, port), note).

    A URL is the one thing read more kindly than `domains add` does: its authority is taken
    and the note says so, because pasting a browser's address bar is the likely mistake.
    """
    note = None
    if _URL.match(text.strip()):
        try:
            parts = urlsplit(text.strip())
            port = parts.port
        except ValueError as exc:
            raise UsageError(f"target {text!r}: not a URL one can read a host from ({exc})") from None
        authority = parts.netloc.rpartition("@")[2]
        authority = authority if port is not None else f"{authority}:{DEFAULT_PORT}"
        note = f"note: reading {text!r} as {authority} (certwatch checks HTTPS on the host and port only)"
        text = authority
    try:
        target = validation.normalize_target(text)
    except validation.ValidationError as exc:
        raise UsageError(f"target {text!r}: {exc}") from None
    return (target.host, target.port), note


def _resolve(entries: list[str], source: str = "--resolve") -> dict[tuple[str, int], list[str]]:
    try:
        return parse_resolve(entries)
    except ConfigError as exc:
        raise UsageError(f"bad {source}: {exc}") from None


def _check_cacert(path: str | None, source: str = "--cacert") -> None:
    """Read the CA file now, so a typo is a usage error before anything connects."""
    if path is None:
        return
    try:
        load_anchors(path)
    except OSError as exc:
        raise UsageError(f"{source} {path!r}: cannot read it ({exc.strerror or exc})") from None
    except ValueError:
        raise UsageError(
            f"{source} {path!r}: no PEM certificate in it (expected a PEM file of CA roots)"
        ) from None


def _environment() -> Settings:
    try:
        return config.load(os.environ)
    except ConfigError as exc:
        raise UsageError(str(exc)) from None


def _options(args: argparse.Namespace) -> ProbeOptions:
    env = _environment()
    resolve = _resolve(
        args.resolve or list(env.resolve_overrides), "--resolve" if args.resolve else "CERTWATCH_RESOLVE"
    )
    cacert = args.cacert or env.ca_file
    _check_cacert(cacert, "--cacert" if args.cacert else "CERTWATCH_CA_FILE")
    try:
        networks = tuple(ipaddress.ip_network(c, strict=False) for c in args.allow_network)
    except ValueError as exc:
        raise UsageError(f"bad --allow-network: {exc}") from exc
    networks = networks or env.allow_networks
    if not (math.isfinite(args.timeout) and args.timeout > 0):
        raise UsageError(f"--timeout must be a positive number of seconds, got {args.timeout}")
    try:
        nameservers = tuple(parse_nameserver(n) for n in args.dns_server or env.dns_servers)
    except ValueError as exc:
        raise UsageError(
            f"bad {'--dns-server' if args.dns_server else 'CERTWATCH_DNS_SERVERS'}: {exc}"
        ) from exc
    return ProbeOptions(
        connect_timeout=min(5.0, args.timeout),
        handshake_timeout=min(5.0, args.timeout),
        overall=args.timeout,
        resolve=resolve,
        ca_file=cacert,
        nameservers=nameservers,
        allow_networks=networks,
        check_ocsp=not args.no_ocsp,
    )


async def _check_all(
    targets: list[tuple[str, int]], options: ProbeOptions, first_check: bool
) -> list[tuple[ProbeResult, Verdict]]:
    limit = asyncio.Semaphore(_CONCURRENCY)

    async def one(host: str, port: int) -> tuple[ProbeResult, Verdict]:
        async with limit:
            result = await probe(host, port, options=options)
        return (result, classify(result, first_check=first_check, now=datetime.now(UTC)))

    return list(await asyncio.gather(*(one(h, p) for h, p in targets)))


def _as_json(result: ProbeResult, verdict: Verdict) -> dict[str, Any]:
    leaf = next((e.chain[0] for e in result.endpoints if e.chain), None)
    return {
        **verdict.to_dict(),
        "certificate": leaf.to_dict() if leaf else None,
        "probe": result.to_dict(),
    }


def _table(rows: list[tuple[ProbeResult, Verdict]]) -> str:
    header = ("TARGET", "STATUS", "PRIMARY CAUSE", "DAYS", "BRAND", "ATS")
    lines: list[tuple[str, ...]] = [header]
    for result, verdict in rows:
        ats = "-" if verdict.ats is None else ("pass" if verdict.ats.passed else "fail")
        lines.append(
            (
                target_label(result.host, result.port),
                verdict.status.value,
                verdict.primary_cause.value if verdict.primary_cause else "-",
                "-" if verdict.days_left is None else str(verdict.days_left),
                verdict.brand or "-",
                ats,
            )
        )
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    out = ["  ".join(cell.ljust(w) for cell, w in zip(line, widths, strict=True)).rstrip() for line in lines]
    for result, verdict in rows:
        for finding in verdict.findings:
            out.append(f"  {result.host}:{result.port} {finding.cause.value}: {finding.detail}")
        out.extend(f"  {result.host}:{result.port} warning: {w}" for w in verdict.warnings)
        if verdict.ats is not None:
            out.extend(f"  {result.host}:{result.port} ATS: {r}" for r in verdict.ats.reasons)
    return "\n".join(out)


def run(args: argparse.Namespace) -> int:
    try:
        parsed = [parse_target(t) for t in args.targets]
        options = _options(args)
    except UsageError as exc:
        print(f"certwatch check: {exc}", file=sys.stderr)
        return 2
    targets = [target for target, _ in parsed]
    for note in dict.fromkeys(n for _, n in parsed if n):
        print(note, file=sys.stderr)
    rows = asyncio.run(_check_all(targets, options, args.first_check))
    if args.json:
        print(json.dumps([_as_json(r, v) for r, v in rows], indent=2))
    else:
        print(_table(rows))
    return 0 if all(v.status is Status.SECURE for _, v in rows) else 1
