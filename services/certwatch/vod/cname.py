"""Where an accelerated domain's CNAME points, looked up in DNS now: the first half of a free
certificate's Status (`checking`, `cname_error`), before any order can be placed.

Asks the configured nameservers (CERTWATCH_DNS_SERVERS, the public view, as probes do) with
the platform's stub resolver, else the system resolver (its canonical name). Failure is data:
an unanswered lookup is `checking` (not yet visible), never an exception.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Sequence
from enum import StrEnum

from certwatch.platform import dns

TIMEOUT_S = 2.0


class Cname(StrEnum):
    OK = "ok"  # the CNAME chain reaches the configured CDN target
    ELSEWHERE = "cname_error"  # the name resolves, but not through the CDN target
    PENDING = "checking"  # no CNAME (yet), the name does not exist, or no answer


def _into(target: str, suffix: str) -> bool:
    target = target.rstrip(".").lower()
    return target == suffix or target.endswith("." + suffix)


async def lookup(name: str, suffix: str, nameservers: Sequence[dns.Nameserver]) -> Cname:
    """How `name`'s CNAME chain stands against `suffix` (both lower-case, no trailing dot)."""
    if nameservers:
        share = TIMEOUT_S / len(nameservers)
        for server in nameservers:
            try:
                answer = await dns.query(server, name, dns.TYPE_A, share)
            except dns.DnsError as exc:
                if "does not exist" in str(exc):
                    return Cname.PENDING
                continue
            except (TimeoutError, OSError):
                continue
            if any(_into(c, suffix) for c in answer.cnames):
                return Cname.OK
            return Cname.ELSEWHERE if answer.cnames or answer.addresses else Cname.PENDING
        return Cname.PENDING
    try:
        async with asyncio.timeout(TIMEOUT_S):
            found = await asyncio.get_running_loop().getaddrinfo(
                name, None, type=socket.SOCK_STREAM, flags=socket.AI_CANONNAME
            )
    except (TimeoutError, OSError):
        return Cname.PENDING
    canonical = next((entry[3] for entry in found if entry[3]), name)
    return Cname.OK if _into(canonical, suffix) else Cname.ELSEWHERE
