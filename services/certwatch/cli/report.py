"""`certwatch report`: download a domain's monitoring report or the account's monthly report.

    certwatch report DOMAIN_ID --format pdf|json -o FILE
    certwatch report --month 2026-11 --format pdf|csv [--time-zone Asia/Shanghai] -o FILE

The bytes stream from the classifier's Reports API into `FILE.part`, which becomes FILE only
once the whole report has arrived: a failure never leaves half a report under its name.
"""

from __future__ import annotations

import argparse
import contextlib
import os
from pathlib import Path
from typing import Any

import grpc

from certwatch.cli.client import CliError, add_connection_options, connect, describe, fail
from certwatch.v1 import reports_pb2 as pb
from certwatch.v1 import reports_pb2_grpc

TIMEOUT_S = 300


def add_parser(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "report", help="download a domain's report (pdf, json) or a monthly report (pdf, csv)",
        description="A domain's monitoring report (every Monitoring Details section and its status"
        " intervals), or with --month the account's monthly report.",
    )  # fmt: skip
    parser.add_argument("domain_id", nargs="?", help="domain id (omit with --month)")
    parser.add_argument("--month", help="YYYY-MM: the monthly report of that month")
    parser.add_argument(
        "--time-zone",
        default="",
        help="IANA zone the month's days are counted in (default: the account's, from"
        " `certwatch alerts rules --time-zone`, else UTC)",
    )
    parser.add_argument("--format", required=True, choices=("pdf", "json", "csv"))
    parser.add_argument("-o", "--output", required=True, type=Path, help="file to write")
    add_connection_options(parser)
    parser.set_defaults(handler=_report)


def _request(args: argparse.Namespace, stub: reports_pb2_grpc.ReportsStub) -> Any:
    if (args.month is None) == (args.domain_id is None):
        raise CliError("give a domain id or --month YYYY-MM, not both")
    if args.month is not None:
        if args.format == "json":
            raise CliError("--format: a monthly report is pdf or csv")
        request = pb.MonthlyReportRequest(month=args.month, format=args.format, time_zone=args.time_zone)
        return stub.MonthlyReport, request
    if args.format == "csv":
        raise CliError("--format: a domain's report is pdf or json")
    return stub.DomainReport, pb.DomainReportRequest(domain_id=args.domain_id, format=args.format)


def _report(args: argparse.Namespace) -> int:
    part = args.output.with_name(args.output.name + ".part")
    try:
        channel, metadata = connect(args, "classifier")
        method, request = _request(args, reports_pb2_grpc.ReportsStub(channel))
        size = 0
        with open(part, "wb") as out:
            for chunk in method(request, metadata=metadata, timeout=TIMEOUT_S):
                out.write(chunk.data)
                size += len(chunk.data)
        os.replace(part, args.output)
    except grpc.RpcError as exc:
        return _failed(part, describe(exc))
    except CliError as exc:
        return _failed(part, str(exc))
    except OSError as exc:
        return _failed(part, f"cannot write {args.output}: {exc.strerror}")
    print(f"wrote {args.output} ({size} bytes)")
    return 0


def _failed(part: Path, message: str) -> int:
    with contextlib.suppress(FileNotFoundError):
        part.unlink()
    return fail(message)
