"""``certwatch check HOST[:PORT] ...``: probe and classify in-process, no services needed.

Useful on its own (a one-shot HTTPS health check, like the product's first check) and as
the quickest way to see exactly what the monitoring pipeline would conclude for a site.
"""

from __future__ import annotations

import argparse
import asyncio
import ipaddress
import json
import sys
from datetime import UTC, datetime
from typing import Any

from certwatch.classifier.causes import Status
from certwatch.classifier.classify import Verdict, classify
from certwatch.prober.dns import parse_nameserver
from certwatch.prober.facts import ProbeResult
from certwatch.prober.tls_probe import ProbeOptions, probe

DEFAULT_PORT = 443
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
        metavar="HOST:PORT:ADDRESS",
        help="use ADDRESS for HOST:PORT instead of DNS (repeatable, like curl)",
    )
    parser.add_argument(
        "--cacert", metavar="PATH", help='trust only the roots in this PEM file ("system": the OS bundle)'
    )
    parser.add_argument(
        "--dns-server",
        action="append",
        default=[],
        metavar="IP[:PORT]",
        help="ask this DNS server instead of the system resolver (repeatable, tried in order)",
    )
    parser.add_argument(
        "--allow-network",
        action="append",
        default=[],
        metavar="CIDR",
        help="also probe addresses in this non-public network (repeatable); an IPv4 network also "
        "admits its IPv6 spellings (mapped, NAT64, 6to4, Teredo)",
    )
    parser.add_argument("--timeout", type=float, default=10.0, help="seconds per target")
    parser.add_argument(
        "--first-check",
        action="store_true",
        help="classify as the check made when monitoring is enabled (ENABLE_FAILED causes)",
    )
    parser.add_argument("--no-ocsp", action="store_true", help="skip the OCSP revocation check")
    parser.add_argument("--json", action="store_true", help="print a JSON list")
    parser.set_defaults(handler=run)


def parse_target(text: str) -> tuple[str, int]:
    """``host``, ``host:port``, ``[v6]:port``, ``[v6]`` or a bare IPv6 address."""
    text = text.strip()
    if text.startswith("["):
        host, sep, rest = text[1:].partition("]")
        if not sep or (rest and not rest.startswith(":")):
            raise UsageError(f"bad target {text!r}")
        return (host, _port(rest[1:]) if rest else DEFAULT_PORT)
    if text.count(":") > 1:  # bare IPv6 literal, no port
        return (str(ipaddress.ip_address(text)), DEFAULT_PORT)
    host, sep, port = text.partition(":")
    if not host:
        raise UsageError(f"bad target {text!r}")
    return (host, _port(port) if sep else DEFAULT_PORT)


def _port(text: str) -> int:
    if not text.isdigit() or not 0 < int(text) < 65536:
        raise UsageError(f"bad port {text!r}")
    return int(text)


def parse_resolve(text: str) -> tuple[tuple[str, int], str]:
    """``HOST:PORT:ADDRESS`` (ADDRESS may be a bracketed or bare IPv6 address)."""
    host, _, rest = text.partition(":")
    port, _, address = rest.partition(":")
    try:
        ip = ipaddress.ip_address(address.strip("[]"))
    except ValueError as exc:
        raise UsageError(f"bad --resolve {text!r}: {exc}") from exc
    if not host:
        raise UsageError(f"bad --resolve {text!r}")
    return ((host, _port(port)), str(ip))


def _options(args: argparse.Namespace) -> ProbeOptions:
    resolve: dict[tuple[str, int], list[str]] = {}
    for entry in args.resolve:
        key, address = parse_resolve(entry)
        resolve.setdefault(key, []).append(address)
    try:
        networks = tuple(ipaddress.ip_network(c, strict=False) for c in args.allow_network)
    except ValueError as exc:
        raise UsageError(f"bad --allow-network: {exc}") from exc
    if args.timeout <= 0:
        raise UsageError("--timeout must be positive")
    try:
        nameservers = tuple(parse_nameserver(n) for n in args.dns_server)
    except ValueError as exc:
        raise UsageError(f"bad --dns-server: {exc}") from exc
    return ProbeOptions(
        connect_timeout=min(5.0, args.timeout),
        handshake_timeout=min(5.0, args.timeout),
        overall=args.timeout,
        resolve=resolve,
        ca_file=args.cacert,
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
        host = f"[{result.host}]" if ":" in result.host else result.host
        ats = "-" if verdict.ats is None else ("pass" if verdict.ats.passed else "fail")
        lines.append(
            (
                f"{host}:{result.port}",
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
        if verdict.ats is not None:
            out.extend(f"  {result.host}:{result.port} ATS: {r}" for r in verdict.ats.reasons)
    return "\n".join(out)


def run(args: argparse.Namespace) -> int:
    try:
        targets = [parse_target(t) for t in args.targets]
        options = _options(args)
    except (UsageError, ValueError) as exc:
        print(f"certwatch check: {exc}", file=sys.stderr)
        return 2
    rows = asyncio.run(_check_all(targets, options, args.first_check))
    if args.json:
        print(json.dumps([_as_json(r, v) for r, v in rows], indent=2))
    else:
        print(_table(rows))
    return 0 if all(v.status is Status.SECURE for _, v in rows) else 1
