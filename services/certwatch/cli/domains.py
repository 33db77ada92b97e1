"""`certwatch domains ...`: add (list or CSV), list, show, edit, enable, disable, recheck, remove,
template."""

from __future__ import annotations

import argparse
import json
import sys
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import grpc

from certwatch.cli import client, details, status
from certwatch.cli.client import CliError, add_connection_options, call, connect, fail, table
from certwatch.inventory import csv_import
from certwatch.inventory.list_statuses import LIST_STATUSES
from certwatch.v1 import inventory_pb2 as pb
from certwatch.v1 import inventory_pb2_grpc


def add_parser(subparsers: Any) -> None:
    parser = subparsers.add_parser("domains", help="manage monitored domains",
                                   description="Add, list and manage monitored HTTPS domains.")  # fmt: skip
    sub = parser.add_subparsers(dest="domains_command", required=True)

    add = sub.add_parser("add", help="add domains: HOST[:PORT], comma lists, or --csv FILE")
    add.add_argument("domains", nargs="*", metavar="HOST[:PORT]", help="domain names or IPs; commas allowed")
    add.add_argument("--csv", type=Path, help="CSV file in the template's format (see `domains template`)")
    add.add_argument(
        "--port", type=client.port_number, default=0, help="HTTPS port for entries without one (default 443)"
    )
    add.add_argument("--contact", action="append", default=[], metavar="ID", help="alert contact (max 3)")
    add.add_argument("--enable", action="store_true", help="start monitoring now (uses quota)")
    add_connection_options(add)
    add.set_defaults(handler=_add)

    lst = sub.add_parser("list", help="list domains with their status")
    lst.add_argument("--status", help=", ".join(LIST_STATUSES))
    lst.add_argument("--cause", help="any cause, e.g. EXPIRED or CHAIN_VALIDATION_FAILED")
    lst.add_argument(
        "--max-days-left", type=client.whole_number, help="certificates with at most this many days left"
    )
    lst.add_argument("--search", help="part of the host name (Unicode or punycode)")
    lst.add_argument("--page-size", type=client.positive_int, default=100, help="at most 1000")
    lst.add_argument("--page-token", default="", help="continue after the page that printed this token")
    lst.add_argument("--all", action="store_true", help="follow page tokens to the end")
    add_connection_options(lst)
    lst.set_defaults(handler=_list)

    show = sub.add_parser("show", help="show one domain")
    show.add_argument("id", help="domain id")
    add_connection_options(show)
    show.set_defaults(handler=_single, action="show")
    for name, help_text in (("enable", "start monitoring (reserves quota), or re-check"),
                            ("disable", "stop monitoring (the 365-day clock keeps running)"),
                            ("remove", "remove domains")):  # fmt: skip
        cmd = sub.add_parser(name, help=f"{help_text}; several ids are done in turn")
        cmd.add_argument("ids", nargs="+", metavar="ID", help="domain ids")
        add_connection_options(cmd)
        cmd.set_defaults(handler=_each, action=name)

    recheck = sub.add_parser(
        "recheck", help="probe monitored domains now (after ENABLE_FAILED: retry the enable)"
    )
    recheck.add_argument("ids", nargs="+", metavar="ID", help="domain ids")
    add_connection_options(recheck)
    recheck.set_defaults(handler=_recheck)

    edit = sub.add_parser("edit", help="change a domain's port or contacts, and re-check it")
    edit.add_argument("id")
    edit.add_argument("--port", type=client.port_number, default=0)
    edit.add_argument("--contact", action="append", default=None, metavar="ID",
                      help="replace the contacts (repeat; max 3)")  # fmt: skip
    edit.add_argument("--no-contacts", action="store_true", help="remove all contacts")
    add_connection_options(edit)
    edit.set_defaults(handler=_edit)

    details.add_parsers(sub)

    template = sub.add_parser("template", help="write the CSV upload template")
    template.add_argument("path", nargs="?", type=Path, help="file to write (default: stdout)")
    template.set_defaults(handler=_template)


def _stub(args: argparse.Namespace) -> tuple[inventory_pb2_grpc.InventoryStub, Any]:
    channel, metadata = connect(args, "inventory")
    return inventory_pb2_grpc.InventoryStub(channel), metadata


def _row(d: pb.Domain) -> list[str]:
    days = str(d.days_left) if d.has_days_left else "-"
    valid_to = d.valid_to.ToDatetime().date().isoformat() if d.HasField("valid_to") else "-"
    return [d.id, client.target_label(d.host, d.port),
            d.status + (f"/{d.primary_cause}" if d.primary_cause else "") + (" (stale)" if d.stale else ""),
            days, valid_to, d.brand or "-", _monitoring(d),
            _age(d.last_checked_at) if d.HasField("last_checked_at") else "-"]  # fmt: skip


def _monitoring(d: pb.Domain) -> str:
    """`on`, `off`, or `failed` for a domain asked to be monitored whose monitoring could not be
    enabled (the seed's Enable Failed: it is not probed until edited or re-checked)."""
    if not d.monitoring_enabled:
        return "off"
    return "failed" if d.status == "ENABLE_FAILED" else "on"


def _fields(d: pb.Domain) -> str:
    """One domain as `FIELD  value` lines: everything `list` shows and what it has no column for."""

    def day(field: str) -> str:
        return getattr(d, field).ToDatetime().date().isoformat() if d.HasField(field) else "-"

    rows = [["ID", d.id], ["TARGET", client.target_label(d.host, d.port)],
            ["STATUS", _row(d)[2]], ["CAUSES", ", ".join(d.causes) or "-"],
            ["ACTION", d.recommended_action or "-"],
            ["DAYS LEFT", str(d.days_left) if d.has_days_left else "-"],
            ["VALID", f"{day('valid_from')} to {day('valid_to')}" if d.HasField("valid_to") else "-"],
            ["BRAND", d.brand or "-"], ["MONITORING", _monitoring(d)],
            ["CHECKED", _age(d.last_checked_at) if d.HasField("last_checked_at") else "-"],
            ["CONTACTS", ", ".join(d.contact_ids) or "-"], ["ADDED", day("added_at")],
            ["FIRST ENABLED", day("first_enabled_at")], ["SERVICE ENDS", day("service_ends_at")]]  # fmt: skip
    width = max(len(name) for name, _ in rows)
    return "\n".join(f"{name.ljust(width)}  {value}" for name, value in rows)


def _age(stamp: Any) -> str:
    """How long ago, the way people read a check time: 45s, 12m, 5h, 3d ago."""
    seconds = max(0, int((datetime.now(UTC) - stamp.ToDatetime(tzinfo=UTC)).total_seconds()))
    for unit, size in (("d", 86_400), ("h", 3_600), ("m", 60)):
        if seconds >= 2 * size:
            return f"{seconds // size}{unit} ago"
    return f"{seconds}s ago"


_HEADER = ["ID", "TARGET", "STATUS", "DAYS LEFT", "EXPIRES", "BRAND", "MONITORING", "CHECKED"]


def _json(message: Any) -> str:
    return json.dumps(client.with_unicode_host(message), indent=2)


def _add(args: argparse.Namespace) -> int:
    try:
        request = pb.AddDomainsRequest(port=args.port, contact_ids=args.contact, enable=args.enable)
        if args.csv:
            request.csv = args.csv.read_bytes()
        elif args.domains:
            request.domains = ",".join(args.domains)
        else:
            return fail("give domains (HOST[:PORT], commas allowed) or --csv FILE")
        stub, metadata = _stub(args)
        response = call(stub.AddDomains, request, metadata)
    except (CliError, OSError) as exc:
        return fail(str(exc))
    if args.json:
        print(_json(response))
    else:
        rows = [[str(r.row), r.entry, r.domain.id if r.added else "-",
                 (r.domain.status if r.added else "REJECTED"),
                 "; ".join([*r.warnings, r.error]).strip("; ") or "-"] for r in response.results]  # fmt: skip
        print(table(rows, ["#", "ENTRY", "ID", "RESULT", "NOTES"]))
    return 0 if all(r.added for r in response.results) else 1


def _list(args: argparse.Namespace) -> int:
    try:
        stub, metadata = _stub(args)
        request = pb.ListDomainsRequest(page_size=args.page_size, status=args.status or "",
                                        cause=args.cause or "", search=args.search or "",
                                        page_token=args.page_token)  # fmt: skip
        if args.max_days_left is not None:
            request.max_days_left, request.has_max_days_left = args.max_days_left, True
        domains: list[pb.Domain] = []
        for _ in range(100_000):
            page = call(stub.ListDomains, request, metadata)
            domains.extend(page.domains)
            if not (args.all and page.next_page_token):
                break
            request.page_token = page.next_page_token
    except CliError as exc:
        return fail(str(exc))
    if args.json:
        print(json.dumps([client.with_unicode_host(d) for d in domains], indent=2))
    else:
        print(table([_row(d) for d in domains], _HEADER))
    if page.next_page_token and not args.all:
        print(f"(more: --all, or --page-token {page.next_page_token})", file=sys.stderr)
    _warn_if_stale(args, domains)
    return 0


def _warn_if_stale(args: argparse.Namespace, domains: list[pb.Domain]) -> None:
    """On stderr, so `--json` output stays parseable: verdicts that may be old, and why."""
    warning = status.staleness_warning(args)
    if warning:
        print(warning, file=sys.stderr)
    stale = [d for d in domains if d.stale]
    if stale:
        print(f"warning: {len(stale)} domain(s) not checked for more than two probe intervals"
              f" (STATUS marked 'stale')", file=sys.stderr)  # fmt: skip


def _single(args: argparse.Namespace) -> int:
    try:
        stub, metadata = _stub(args)
        result = call(stub.GetDomain, pb.GetDomainRequest(id=args.id), metadata)
    except CliError as exc:
        return fail(str(exc))
    print(_json(result) if args.json else _fields(result))
    _warn_if_stale(args, [result])
    return 0


# A refusal that is the same for every id: the rest are not tried.
_FOR_ALL = {grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.UNAUTHENTICATED,
            grpc.StatusCode.DEADLINE_EXCEEDED}  # fmt: skip


def _each(args: argparse.Namespace) -> int:
    """Enable, disable or remove each id in turn. One id refused (unknown, no quota left) is
    said on stderr and the others go on (exit status 1); a single id refused is exit 2."""
    for raw in args.ids:  # a typo is a usage error, before anything changes
        try:
            uuid.UUID(raw)
        except ValueError:
            return fail(f"{args.action}: {raw[:64]!r} is not a domain id (a UUID)")
    try:
        stub, metadata = _stub(args)
    except CliError as exc:
        return fail(str(exc))
    done: list[tuple[str, pb.Domain | None]] = []
    refused = 0
    for domain_id in args.ids:
        try:
            done.append((domain_id, _act(stub, args.action, domain_id, metadata)))
        except grpc.RpcError as exc:
            if len(args.ids) == 1:
                return fail(client.describe(exc))
            if exc.code() in _FOR_ALL:
                _print_done(args, done)
                return fail(f"{client.describe(exc)} ({len(args.ids) - len(done) - refused} not tried)")
            refused += 1
            print(f"certwatch: {domain_id}: {' '.join(client.describe(exc).split())}", file=sys.stderr)
    _print_done(args, done)
    return 1 if refused else 0


def _act(
    stub: inventory_pb2_grpc.InventoryStub, action: str, domain_id: str, metadata: Any
) -> pb.Domain | None:
    ref = pb.DomainRef(id=domain_id)
    if action == "remove":
        stub.RemoveDomain(ref, metadata=metadata, timeout=30)
        return None
    rpc = stub.EnableMonitoring if action == "enable" else stub.DisableMonitoring
    domain: pb.Domain = rpc(ref, metadata=metadata, timeout=30)
    return domain


def _print_done(args: argparse.Namespace, done: list[tuple[str, pb.Domain | None]]) -> None:
    domains = [d for _, d in done if d is not None]
    if args.action == "remove":
        for domain_id, _ in done:
            print(f"removed {domain_id}")
    elif args.json:
        shown = [json.loads(_json(d)) for d in domains]
        print(json.dumps(shown[0] if len(args.ids) == 1 and shown else shown, indent=2))
    elif domains:
        print(table([_row(d) for d in domains], _HEADER))


def _edit(args: argparse.Namespace) -> int:
    request = pb.EditDomainRequest(id=args.id, port=args.port)
    if args.no_contacts or args.contact is not None:
        request.set_contacts = True
        request.contact_ids.extend(args.contact or [])
    try:
        stub, metadata = _stub(args)
        result = call(stub.EditDomain, request, metadata)
    except CliError as exc:
        return fail(str(exc))
    print(_json(result) if args.json else table([_row(result)], _HEADER))
    return 0


def _recheck(args: argparse.Namespace) -> int:
    for raw in args.ids:  # a typo is a usage error; unknown ids are reported per id below
        try:
            uuid.UUID(raw)
        except ValueError:
            return fail(f"recheck: {raw[:64]!r} is not a domain id (a UUID)")
    try:
        stub, metadata = _stub(args)
        response = call(stub.RecheckDomains, pb.RecheckDomainsRequest(ids=args.ids), metadata)
    except CliError as exc:
        return fail(str(exc))
    if args.json:
        print(_json(response))
    else:
        rows = [[r.id, f"{r.domain.host}:{r.domain.port}", r.domain.status, "re-checking now"]
                if r.HasField("domain") else [r.id, "-", r.code, r.error]
                for r in response.results]  # fmt: skip
        print(table(rows, ["ID", "TARGET", "RESULT", "NOTES"]))
    return 0 if all(r.HasField("domain") for r in response.results) else 1


def _template(args: argparse.Namespace) -> int:
    if args.path:
        try:
            args.path.write_text(csv_import.TEMPLATE)
        except OSError as exc:
            return fail(f"cannot write {args.path}: {exc.strerror or exc}")
        print(f"wrote {args.path}")
    else:
        sys.stdout.write(csv_import.TEMPLATE)
    return 0
