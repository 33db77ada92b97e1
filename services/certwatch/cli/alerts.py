"""`certwatch alerts ...` (rules, mute, ack, log, digest) and `certwatch contacts test`: the Notifier API."""

from __future__ import annotations

import argparse
import json
from datetime import UTC, datetime
from typing import Any

from google.protobuf.timestamp_pb2 import Timestamp

from certwatch.cli import client
from certwatch.cli.client import CliError, add_connection_options, call, connect, fail, table
from certwatch.v1 import notifier_pb2 as pb
from certwatch.v1 import notifier_pb2_grpc


def add_parser(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "alerts", help="notification rules, mutes, acknowledgements and deliveries"
    )
    sub = parser.add_subparsers(dest="alerts_command", required=True)

    rules = sub.add_parser("rules", help="show (or, with options, change) the account's or a domain's rules")
    rules.add_argument("domain_id", nargs="?", default="", help="a domain (default: the account's rules)")
    rules.add_argument(
        "--expiry-days", type=client.positive_int, help="alert when fewer days are left (1..365)"
    )
    rules.add_argument(
        "--network-failures", type=client.positive_int, help="consecutive failures first (1..5)"
    )
    rules.add_argument("--events", help="comma-separated notification events to switch on (the rest off)")
    rules.add_argument("--time-zone", help="the account's IANA time zone, e.g. Asia/Shanghai")
    rules.add_argument("--digest-at", help="the account's local digest time HH:MM (default 09:00)")
    rules.add_argument("--quiet", metavar="HH:MM-HH:MM", help="the account's quiet hours ('' clears them)")
    add_connection_options(rules)
    rules.set_defaults(handler=_rules)

    mute = sub.add_parser("mute", help="no alerts for a domain until a time")
    mute.add_argument("domain_id")
    mute.add_argument("--until", required=True, help="ISO 8601 time (UTC unless it says), or 'now' to unmute")
    add_connection_options(mute)
    mute.set_defaults(handler=_mute)

    ack = sub.add_parser("ack", help="acknowledge a domain's open incident: no reminders until it changes")
    ack.add_argument("domain_id")
    add_connection_options(ack)
    ack.set_defaults(handler=_ack)

    log = sub.add_parser("log", help="every delivery of a domain's alerts")
    log.add_argument("domain_id", nargs="?", default="")
    log.add_argument("--contact", default="", metavar="CONTACT_ID", help="deliveries to a contact instead")
    log.add_argument("--limit", type=client.positive_int, default=100, help="at most 1000")
    add_connection_options(log)
    log.set_defaults(handler=_log)

    digest = sub.add_parser("digest", help="send today's digest")
    digest.add_argument("--now", action="store_true", required=True, help="now, not at the account's hour")
    add_connection_options(digest)
    digest.set_defaults(handler=_digest)


def add_contact_test(contacts: Any) -> None:
    """`certwatch contacts test CONTACT_ID`: added to the contacts command, sent by the notifier."""
    test = contacts.add_parser("test", help="send one test message over each of a contact's channels")
    test.add_argument("id")
    add_connection_options(test)
    test.set_defaults(handler=_test)


def _stub(args: argparse.Namespace) -> tuple[notifier_pb2_grpc.NotifierStub, Any]:
    channel, metadata = connect(args, "notifier")
    return notifier_pb2_grpc.NotifierStub(channel), metadata


def _time(value: Timestamp) -> str:
    when: datetime = value.ToDatetime(tzinfo=UTC)
    return when.isoformat().replace("+00:00", "Z")


def _set_request(args: argparse.Namespace) -> pb.SetRulesRequest | None:
    request = pb.SetRulesRequest(domain_id=args.domain_id)
    changed = False
    if args.expiry_days is not None:
        request.expiry_threshold_days, changed = args.expiry_days, True
    if args.network_failures is not None:
        request.network_failures, changed = args.network_failures, True
    if args.events is not None:
        request.enabled_events.extend(e.strip() for e in args.events.split(",") if e.strip())
        request.set_enabled_events, changed = True, True
    for name in ("time_zone", "digest_at"):
        if getattr(args, name) is not None:
            setattr(request, name, getattr(args, name))
            changed = True
    if args.quiet is not None:
        start, sep, end = args.quiet.partition("-")
        if args.quiet and not sep:
            raise CliError(f"--quiet: expected HH:MM-HH:MM, got {args.quiet!r}")
        request.quiet_start, request.quiet_end, changed = start, end, True
    return request if changed else None


def _rules(args: argparse.Namespace) -> int:
    try:
        stub, metadata = _stub(args)
        request = _set_request(args)
        if request is None:
            rules = call(stub.GetRules, pb.RulesRequest(domain_id=args.domain_id), metadata)
        else:
            rules = call(stub.SetRules, request, metadata)
    except CliError as exc:
        return fail(str(exc))
    shown = {
        "domain_id": rules.domain_id or None, "expiry_threshold_days": rules.expiry_threshold_days,
        "network_failures": rules.network_failures, "enabled_events": list(rules.enabled_events),
        "time_zone": rules.time_zone, "digest_at": rules.digest_at,
        "quiet_hours": f"{rules.quiet_start}-{rules.quiet_end}" if rules.quiet_start else None,
    }  # fmt: skip
    if args.json:
        print(json.dumps(shown))
    else:
        for key, value in shown.items():
            print(
                f"{key}: {', '.join(value) if isinstance(value, list) else value if value is not None else '-'}"
            )
    return 0


def _alerts(args: argparse.Namespace, alerts: pb.DomainAlerts) -> int:
    shown = {
        "domain_id": alerts.domain_id,
        "muted_until": _time(alerts.muted_until) if alerts.HasField("muted_until") else None,
        "incident": alerts.incident, "acknowledged_incident": alerts.acknowledged_incident or None,
        "active": list(alerts.active),
    }  # fmt: skip
    print(json.dumps(shown) if args.json else " ".join(f"{k}={v}" for k, v in shown.items()))
    return 0


def _mute(args: argparse.Namespace) -> int:
    request = pb.MuteRequest(domain_id=args.domain_id)
    if args.until != "now":
        try:
            until = datetime.fromisoformat(args.until)
        except ValueError:
            return fail(f"--until: expected an ISO 8601 time such as 2026-12-31T18:00, got {args.until!r}")
        request.until.FromDatetime((until if until.tzinfo else until.replace(tzinfo=UTC)).astimezone(UTC))
    try:
        stub, metadata = _stub(args)
        return _alerts(args, call(stub.Mute, request, metadata))
    except CliError as exc:
        return fail(str(exc))


def _ack(args: argparse.Namespace) -> int:
    try:
        stub, metadata = _stub(args)
        return _alerts(
            args, call(stub.Acknowledge, pb.AcknowledgeRequest(domain_id=args.domain_id), metadata)
        )
    except CliError as exc:
        return fail(str(exc))


def _log(args: argparse.Namespace) -> int:
    if bool(args.domain_id) == bool(args.contact):
        return fail("give a DOMAIN_ID or --contact CONTACT_ID")
    try:
        stub, metadata = _stub(args)
        request = pb.ListDeliveriesRequest(
            domain_id=args.domain_id, contact_id=args.contact, limit=args.limit
        )
        deliveries = list(call(stub.ListDeliveries, request, metadata).deliveries)
    except CliError as exc:
        return fail(str(exc))
    rows = [{"time": _time(d.time), "event": d.event, "contact_id": d.contact_id, "channel": d.channel,
             "outcome": d.outcome, "detail": d.detail} for d in deliveries]  # fmt: skip
    if args.json:
        print(json.dumps(rows, indent=2))
    else:
        print(table([[r["time"], r["event"], r["contact_id"], r["channel"], r["outcome"], r["detail"]] for r in rows],
                    ["TIME", "EVENT", "CONTACT", "CHANNEL", "OUTCOME", "DETAIL"]))  # fmt: skip
    return 0


def _digest(args: argparse.Namespace) -> int:
    try:
        stub, metadata = _stub(args)
        result = call(stub.SendDigest, pb.SendDigestRequest(), metadata)
    except CliError as exc:
        return fail(str(exc))
    if args.json:
        print(json.dumps({"contacts": result.contacts, "queued": result.queued}))
    else:
        print(f"digest queued: {result.queued} messages to {result.contacts} contacts")
    return 0


def _test(args: argparse.Namespace) -> int:
    try:
        stub, metadata = _stub(args)
        results = call(stub.SendTestMessage, pb.SendTestMessageRequest(contact_id=args.id), metadata)
    except CliError as exc:
        return fail(str(exc))
    rows = [{"channel": r.channel, "outcome": r.outcome, "detail": r.detail} for r in results.results]
    if args.json:
        print(json.dumps(rows, indent=2))
    else:
        print(table([[r["channel"], r["outcome"], r["detail"]] for r in rows], ["CHANNEL", "OUTCOME", "DETAIL"])
              if rows else "the contact has no channel to test")  # fmt: skip
    return 0 if rows and all(r["outcome"] == "delivered" for r in rows) else 1
