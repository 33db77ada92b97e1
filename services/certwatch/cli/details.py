"""`certwatch domains details ID` and `certwatch domains history ID`: the monitoring report
and the status history (intervals of one verdict; `--checks` lists each recorded verdict)."""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from typing import Any

import grpc

from certwatch.cli.client import (
    CliError,
    add_connection_options,
    as_json,
    call,
    connect,
    fail,
    table,
    target_label,
)
from certwatch.v1 import classifier_pb2 as pb
from certwatch.v1 import classifier_pb2_grpc, inventory_pb2, inventory_pb2_grpc


def add_parsers(sub: Any) -> None:
    details = sub.add_parser(
        "details", help="monitoring report: status, ATS, IPs, certificates, chain, updates"
    )
    details.add_argument("id", help="domain id")
    add_connection_options(details)
    details.set_defaults(handler=_details)
    history = sub.add_parser("history", help="status history as intervals of one verdict (newest first)")
    history.add_argument("id", help="domain id")
    history.add_argument(
        "--checks", action="store_true",
        help="each recorded verdict instead: a check that changed the status, a cause or the certificate (last 500)",
    )  # fmt: skip
    history.add_argument("--limit", type=_limit, default=100, help="intervals to list (default 100)")
    add_connection_options(history)
    history.set_defaults(handler=_history)


def _stub(args: argparse.Namespace) -> tuple[classifier_pb2_grpc.ClassifierStub, Any]:
    channel, metadata = connect(args, "classifier")
    return classifier_pb2_grpc.ClassifierStub(channel), metadata


def _day(stamp: Any) -> str:
    return stamp.ToDatetime().date().isoformat() if stamp.seconds else "-"


def finding_line(finding: pb.Finding) -> str:
    """``CAUSE: detail`` as `certwatch check` prints it, naming the certificate when the
    detail does not already."""
    line = f"{finding.cause}: {finding.detail}"
    if finding.cert_subject and finding.cert_subject not in finding.detail:
        line += f" (certificate {finding.cert_subject}, sha256 {finding.cert_sha256[:16]}…)"
    return line


def contact_label(contact: inventory_pb2.Contact) -> str:
    """A contact as the seed's details show it: name, phone number and email address."""
    reach = ", ".join(x for x in (contact.phone, contact.email) if x)
    return f"{contact.name} ({reach})" if reach else contact.name


def _contact_labels(args: argparse.Namespace, ids: Sequence[str]) -> list[str]:
    """The domain's contacts read from inventory, which holds them (the classifier's report
    has their ids only); their ids when inventory cannot be asked. `--server` names the
    classifier, so inventory is found as without it (`CERTWATCH_INVENTORY_ADDR`, the
    credentials file)."""
    if not ids:
        return []
    try:
        channel, metadata = connect(argparse.Namespace(**{**vars(args), "server": None}), "inventory")
        with channel:
            stub = inventory_pb2_grpc.InventoryStub(channel)
            listed = stub.ListContacts(inventory_pb2.ListContactsRequest(), metadata=metadata, timeout=5)
    except (CliError, grpc.RpcError):
        return [f"{i} (contact details unavailable: inventory did not answer)" for i in ids]
    by_id = {c.id: c for c in listed.contacts}
    return [contact_label(by_id[i]) if i in by_id else i for i in ids]


def _details(args: argparse.Namespace) -> int:
    try:
        stub, metadata = _stub(args)
        report = call(stub.GetMonitoringDetails, pb.StatusRequest(domain_id=args.id), metadata)
    except CliError as exc:
        return fail(str(exc))
    if args.json:
        print(json.dumps(as_json(report), indent=2))
        return 0
    d = report.details
    status = d.status + (f" / {', '.join(d.causes)}" if d.causes else "")
    days = str(d.remaining_service_days) if d.HasField("remaining_service_days") else "-"
    lines = [f"{target_label(d.host, d.port)}  {status}", f"  monitoring: {'on' if d.enabled else 'off'},"
             f" {days} service days left (ends {d.service_ends_on or '-'}), checked {_day(d.checked_at)}"]  # fmt: skip
    if d.recommended_action:
        lines.append(f"  action: {d.recommended_action}")
    lines += [f"  {line}" for line in map(finding_line, report.findings)]
    lines += [f"  warning: {w}" for w in d.warnings]
    ats = report.ats
    verdict = ("pass" if getattr(ats, "pass") else "fail") if ats.checked else "not checked"
    lines += ["", f"ATS check: {verdict}", *[f"  - {r}" for r in ats.reasons]]
    lines += ["", "IP content:", table([[ip.ip, ip.status, ",".join(ip.causes) or "-", ip.tls_version or "-",
                                         ip.cipher or "-"] for ip in report.ip_content],
                                       ["IP", "STATUS", "CAUSES", "TLS", "CIPHER"])]  # fmt: skip
    lines += ["", "Certificate:"]
    for info in report.certificates:
        c = info.certificate
        lines.append(f"  {c.subject_cn or c.subject}  {info.status}, {info.remaining_days} days left,"
                     f" brand {info.brand or '-'}, {c.key_type}-{c.key_bits}, {c.signature_hash or '-'}")  # fmt: skip
        lines.append(
            f"    SANs: {', '.join([*c.dns_names, *c.ip_addresses]) or '-'}; sha256 {c.sha256[:16]}…"
        )
    lines += ["", "Certificate chain:"]
    for chain in report.chains:
        lines.append(f"  served by {', '.join(chain.ips) or '-'}:")
        for c in chain.certificates:
            lines.append(f"    {c.subject_cn or c.subject}  issued by {c.issuer_org or c.issuer},"
                         f" {_day(c.not_before)} → {_day(c.not_after)}")  # fmt: skip
    lines += ["", "Contacts:", *[f"  {c}" for c in _contact_labels(args, report.contact_ids) or ["-"]]]
    lines += ["", "Domain name updates:"]
    for update in report.domain_name_updates:
        for change in update.changes:
            before, after = ", ".join(change.before) or "-", ", ".join(change.after) or "-"
            lines.append(f"  {_day(update.observed_at)}  {change.kind}: {before} → {after}")
    if not report.domain_name_updates:
        lines.append("  none")
    print("\n".join(lines))
    return 0


def _limit(raw: str) -> int:
    if not raw.isdigit() or not 1 <= int(raw) <= 100_000:
        raise argparse.ArgumentTypeError(f"must be a whole number from 1 to 100000, got {raw!r}")
    return int(raw)


def duration_text(seconds: float) -> str:
    """The two largest units: 3d 4h, 2h 5m, 7m 30s, 45s."""
    total = int(seconds)
    parts = [
        (total // 86_400, "d"),
        (total % 86_400 // 3600, "h"),
        (total % 3600 // 60, "m"),
        (total % 60, "s"),
    ]
    first = next((i for i, (n, _) in enumerate(parts) if n), len(parts) - 1)
    return " ".join(f"{n}{unit}" for n, unit in parts[first : first + 2] if n) or "0s"


def interval_rows(intervals: list[pb.StatusInterval]) -> list[list[str]]:
    def stamp(ts: Any) -> str:
        return str(ts.ToDatetime().isoformat(timespec="seconds"))

    return [[stamp(i.started_at), "now" if i.open else stamp(i.ended_at),
             duration_text(i.duration_seconds) + (" so far" if i.open else ""),
             i.status, ",".join(i.causes) or "-"] for i in intervals]  # fmt: skip


def _history(args: argparse.Namespace) -> int:
    if not args.checks:
        return _intervals(args)
    try:
        stub, metadata = _stub(args)
        history = call(stub.ListStatusHistory, pb.StatusRequest(domain_id=args.id), metadata)
    except CliError as exc:
        return fail(str(exc))
    if args.json:
        print(json.dumps([as_json(e) for e in history.entries], indent=2))
        return 0
    rows = [[e.checked_at.ToDatetime().isoformat(timespec="seconds"), e.status, ",".join(e.causes) or "-"]
            for e in history.entries]  # fmt: skip
    print(table(rows, ["CHECKED", "STATUS", "CAUSES"]))
    return 0


def _intervals(args: argparse.Namespace) -> int:
    found: list[pb.StatusInterval] = []
    token = ""
    try:
        stub, metadata = _stub(args)
        for _ in range(args.limit):  # bounded: a page at a time until the limit or the last page
            size = min(500, args.limit - len(found))
            request = pb.StatusIntervalsRequest(domain_id=args.id, page_size=size, page_token=token)
            page = call(stub.ListStatusIntervals, request, metadata)
            found += page.intervals
            token = page.next_page_token
            if not token or len(found) >= args.limit:
                break
    except CliError as exc:
        return fail(str(exc))
    if args.json:
        print(json.dumps([as_json(i) for i in found], indent=2))
        return 0
    print(table(interval_rows(found), ["FROM", "TO", "DURATION", "STATUS", "CAUSES"]))
    return 0
