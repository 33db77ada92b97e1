"""Signed DescribeVodDomainCertificateInfo requests a second vs a bare JSON endpoint of the
same HTTP stack, and the p99 latency at that load.

Run alone: `.venv/bin/python -m bench.vod_api` (from the repo root; imports tests.support).

Fresh PostgreSQL (durable) with an account, an AccessKey and an accelerated domain whose
uploaded certificate (a test PKI's) is what the action answers. In interleaved rounds, the
same closed-loop client (keep-alive connections, raw HTTP/1.1 on asyncio streams) drives:
- measured: the real `VodHttpApi` (RPC v1 signature verified, AccessKey looked up, nonce
  remembered in PostgreSQL, clock checked, rate limit, the domain and its certificate read,
  JSON rendered) through `HttpServer`, with the service's change feed live: the key and the
  answer come from its caches, as in the service, after the first request;
- reference: a bare endpoint on the same `HttpServer` answering a fixed JSON body of the
  same size, to the same request bytes.
Requests are signed before each round (a fresh nonce each, by the SDK's own signer) so the
client's signing costs neither side; both run in this one process and event loop. The CPU
this process spends per request is reported too: on a loaded machine the rate follows
PostgreSQL's round-trip time, the CPU figure much less.

The target is judged on RPC v1 requests at CONCURRENCY connections, its p99 "at that load"
bounding how many (the issue's pairing: a higher rate bought with latency does not count).
Each round also runs, reported as (diag): RPC v1 at LIGHT connections (8 clients in
lockstep wait for one nonce statement together, so that figure mostly measures
PostgreSQL's round trip) and ACS3-HMAC-SHA256 at CONCURRENCY (the current SDK's default:
headers to canonicalize and a SHA-256 more; its bare reference answers the same ACS3
bytes, whose short query the HTTP layer parses faster).
The process's heap is settled (`platform.heap.settle`) before the rounds, as every
service does once started.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from itertools import cycle
from types import SimpleNamespace
from typing import Any
from urllib.parse import urlencode

import orjson
from alibabacloud_tea_openapi.utils import Utils

from bench._common import Row, bounded, cli, fresh_servers, percentile, pg_settings, save
from certwatch.platform import auth, db, heap
from certwatch.platform.eventlog import EventLog
from certwatch.platform.shredding import Vault
from certwatch.services import MIGRATIONS
from certwatch.vod import access_keys, signing
from certwatch.vod.authn import Authenticator, RateLimit
from certwatch.vod.cert_info import CertInfo
from certwatch.vod.change_feed import ChangeFeed
from certwatch.vod.domains import VodDomains
from certwatch.vod.http_api import HttpServer, Response, VodHttpApi, actions

BENCH = "vod_api"
DOMAIN = "bench.vod.test"
CONCURRENCY = 32
LIGHT = 8  # (diag) the load the figures were first taken at
# (scheme, connections) measured each round; the first is the one the target is judged on.
RUNS = ((signing.RPC_V1, CONCURRENCY), (signing.RPC_V1, LIGHT), (signing.ACS3, CONCURRENCY))
ROUNDS = 3
ROUND_S = 3.0
SDK_USER_AGENT = "AlibabaCloud (Linux; x86_64) Python/3.11.7 Core/0.3.3 TeaDSL/1"
PER_ROUND = 15_000  # requests signed for a round (more than a round can send)
P99_TARGET_MS = 20.0


class Bare:
    """The same HTTP stack's cheapest JSON answer: no signature, no database."""

    def __init__(self, body: bytes) -> None:
        self._body = body

    async def handle(self, request: signing.Request) -> Response:
        return Response(200, "application/json;charset=utf-8", self._body)


def _signed(key: access_keys.AccessKey, port: int, n: int, scheme: str) -> list[bytes]:
    return (_signed_acs3 if scheme == signing.ACS3 else _signed_rpc_v1)(key, port, n)


def _signed_acs3(key: access_keys.AccessKey, port: int, n: int) -> list[bytes]:
    """POSTs as the current SDK sends them by default: every parameter in the query, an
    empty body, the x-acs-* headers, signed by its own `Utils.get_authorization`."""
    now = datetime.now(UTC).strftime(signing.TIME_FORMAT)
    empty = hashlib.sha256(b"").hexdigest()
    out = []
    for _ in range(n):
        headers = {"host": f"127.0.0.1:{port}", "x-acs-version": "2017-03-21",
                   "x-acs-action": "DescribeVodDomainCertificateInfo", "user-agent": SDK_USER_AGENT,
                   "x-acs-date": now, "x-acs-signature-nonce": uuid.uuid4().hex, "accept": "application/json",
                   "x-acs-content-sha256": empty}  # fmt: skip
        unsigned = SimpleNamespace(method="POST", pathname="/", query={"DomainName": DOMAIN}, headers=headers)
        headers["authorization"] = Utils.get_authorization(
            unsigned, signing.ACS3, empty, key.access_key_id, key.access_key_secret
        )
        fields = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
        out.append(f"POST /?DomainName={DOMAIN} HTTP/1.1\r\n{fields}Content-Length: 0\r\n\r\n".encode())
    return out


def _signed_rpc_v1(key: access_keys.AccessKey, port: int, n: int) -> list[bytes]:
    now = datetime.now(UTC).strftime(signing.TIME_FORMAT)
    out = []
    for _ in range(n):
        params = {"Action": "DescribeVodDomainCertificateInfo", "Version": "2017-03-21", "Format": "JSON",
                  "DomainName": DOMAIN, "SignatureMethod": "HMAC-SHA1", "SignatureVersion": "1.0",
                  "SignatureNonce": uuid.uuid4().hex, "AccessKeyId": key.access_key_id, "Timestamp": now}  # fmt: skip
        params["Signature"] = Utils.get_rpcsignature(params, "GET", key.access_key_secret)
        out.append(f"GET /?{urlencode(params)} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n".encode())
    return out


async def _drive(
    port: int, requests: Iterator[bytes], concurrency: int
) -> tuple[int, float, list[float], int]:
    """`concurrency` connections send `requests` one after another for ROUND_S (or until
    they run out); returns (answered 200, elapsed, latencies, other statuses)."""
    queue = requests
    latencies: list[float] = []
    ok = bad = 0
    deadline = time.perf_counter() + ROUND_S

    async def connection() -> None:
        nonlocal ok, bad
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            for request in queue:
                if time.perf_counter() > deadline:
                    break
                t0 = time.perf_counter()
                writer.write(request)
                head = await reader.readuntil(b"\r\n\r\n")
                length = int(head.split(b"Content-Length: ")[1].split(b"\r\n")[0])
                await reader.readexactly(length)
                latencies.append(time.perf_counter() - t0)
                if head.startswith(b"HTTP/1.1 200 "):
                    ok += 1
                else:
                    bad += 1
        finally:
            writer.close()

    start = time.perf_counter()
    await asyncio.gather(*(connection() for _ in range(concurrency)))
    return ok, time.perf_counter() - start, latencies, bad


async def run() -> list[Row]:
    from tests.support.pki import TestPKI

    with fresh_servers(BENCH) as (pg, _nats), TestPKI(label="Bench") as pki:
        pool = await db.open_pool(pg.url, min_size=4, max_size=12, migrate=MIGRATIONS)
        try:
            async with pool.connection() as conn:
                settings = await pg_settings(conn)
            vault = Vault(os.urandom(32))
            account_id, _ = await auth.create_account(pool, "bench-vod")
            key = await access_keys.create(pool, vault, account_id)
            feed = ChangeFeed(pg.url)  # the service's caches of keys and domain lookups
            feed_task = asyncio.create_task(feed.run())
            domains = VodDomains(EventLog(pool), vault, cname_suffix=None, ca_file=pki.ca_file, feed=feed)
            leaf = pki.leaf(DOMAIN)
            await domains.add(
                account_id, {"DomainName": DOMAIN, "Sources": '[{"content":"192.0.2.1","type":"ipaddr"}]'}
            )
            await domains.set_certificate(account_id, {
                "DomainName": DOMAIN, "SSLProtocol": "on", "CertType": "upload",
                "SSLPub": (leaf.pem + pki.intermediate.pem).decode(), "SSLPri": leaf.key_pem.decode()})  # fmt: skip
            info = CertInfo(pool, domains, region="cn-shanghai", cname_suffix=None, nameservers=())
            authn = Authenticator(pool, vault, RateLimit(1e9, 10**9), feed=feed)
            async with bounded(10, "change feed live"):
                while not feed.live:
                    await asyncio.sleep(0.01)
            real = HttpServer(VodHttpApi(authn, actions(info, domains), region="cn-shanghai"), "127.0.0.1", 0)
            await real.start()
            sample = await info.describe(account_id, {"DomainName": DOMAIN})
            body = orjson.dumps({"RequestId": str(uuid.uuid4()).upper(), **sample})
            bare = HttpServer(Bare(body), "127.0.0.1", 0)
            await bare.start()
            heap.settle()  # as the service does once started (platform/service.py)
            sides: dict[tuple[str, str, int], dict[str, Any]] = {
                (name, *run): {"ok": 0, "s": 0.0, "cpu": 0.0, "lat": [], "bad": 0}
                for name in ("real", "bare")
                for run in RUNS
            }
            try:
                for _ in range(ROUNDS):
                    for scheme, concurrency in RUNS:
                        signed = _signed(key, real.port, PER_ROUND, scheme)
                        # The bare endpoint answers the same bytes (it checks nothing: repeating them is free).
                        for name, server, requests in (
                            ("real", real, iter(signed)),
                            ("bare", bare, cycle(signed)),
                        ):
                            cpu0 = time.process_time()
                            async with bounded(ROUND_S + 60, f"{name} round"):
                                ok, elapsed, lat, bad = await _drive(server.port, requests, concurrency)
                            side = sides[name, scheme, concurrency]
                            side["cpu"] += time.process_time() - cpu0
                            side["ok"] += ok
                            side["s"] += elapsed
                            side["lat"] += lat
                            side["bad"] += bad
            finally:
                await real.close()
                await bare.close()
                feed.stop()
                await feed_task
        finally:
            await pool.close()
    rows = []
    for scheme, n in RUNS:
        real_side, bare_side = sides["real", scheme, n], sides["bare", scheme, n]
        judged = (scheme, n) == RUNS[0]
        diag = "" if judged else f"(diag, {n} connections) "
        name = "RPC v1" if scheme == signing.RPC_V1 else f"{scheme}, the SDK's default"
        rows += [
            Row(BENCH, f"{diag}signed DescribeVodDomainCertificateInfo ({name}), keep-alive",
                real_side["ok"] / real_side["s"], "req/s", "bare JSON endpoint, same HTTP stack, same bytes",
                bare_side["ok"] / bare_side["s"], target_kind="ratio" if judged else "",
                target=0.5 if judged else None,
                note=f"{n} connections, synchronous_commit={settings.get('synchronous_commit')}"),
            Row(BENCH, f"{diag}signed DescribeVodDomainCertificateInfo ({name}) p99 at that load",
                percentile(real_side["lat"], 99) * 1000, "ms", "bare endpoint p99",
                percentile(bare_side["lat"], 99) * 1000, target_kind="max" if judged else "",
                target=P99_TARGET_MS if judged else None),
            Row(BENCH, f"(diag) {name}, {n} connections: signed p50", percentile(real_side["lat"], 50) * 1000,
                "ms", "bare p50", percentile(bare_side["lat"], 50) * 1000),
            Row(BENCH, f"(diag) {name}, {n} connections: this process's CPU per signed request (server and client)",
                real_side["cpu"] / max(1, real_side["ok"]) * 1000, "ms", "per bare request",
                bare_side["cpu"] / max(1, bare_side["ok"]) * 1000),
        ]  # fmt: skip
    context = {"postgres": settings, "rounds": ROUNDS, "round_s": ROUND_S, "runs": [list(r) for r in RUNS],
               "real_ok": {f"{s} {n}": sides["real", s, n]["ok"] for s, n in RUNS},
               "bare_ok": {f"{s} {n}": sides["bare", s, n]["ok"] for s, n in RUNS}, "body_bytes": len(body)}  # fmt: skip
    bad = sum(sides["real", s, n]["bad"] for s, n in RUNS)
    if bad:
        raise RuntimeError(f"{bad} signed requests were not answered 200")
    save(BENCH, rows, context)
    return rows


if __name__ == "__main__":
    cli(BENCH, run)
