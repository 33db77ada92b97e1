"""AccessKeys and domain answers are cached by every vod replica, and a revoked key is still
refused at once by all of them: the revocation returns only when every replica's change feed
dropped it. Another replica's change of a domain drops its cached answer."""

from __future__ import annotations

import asyncio
import contextlib
import os
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

from alibabacloud_tea_openapi.utils import Utils
from psycopg_pool import AsyncConnectionPool

from certwatch.platform import auth
from certwatch.platform.eventlog import EventLog
from certwatch.platform.shredding import Vault
from certwatch.vod import access_keys, signing
from certwatch.vod.authn import Authenticator, RateLimit
from certwatch.vod.cert_info import CertInfo
from certwatch.vod.change_feed import ChangeFeed
from certwatch.vod.domains import VodDomains
from certwatch.vod.errors import ApiError
from certwatch.vod.http_api import parse_params


def _signed(key: access_keys.AccessKey) -> signing.Request:
    params = {"Action": "DescribeVodDomainCertificateInfo", "Version": "2017-03-21", "DomainName": "a.test",
              "SignatureMethod": "HMAC-SHA1", "SignatureVersion": "1.0", "SignatureNonce": uuid.uuid4().hex,
              "AccessKeyId": key.access_key_id, "Timestamp": datetime.now(UTC).strftime(signing.TIME_FORMAT)}  # fmt: skip
    params["Signature"] = Utils.get_rpcsignature(params, "GET", key.access_key_secret)
    return signing.Request("GET", "/", parse_params(urlencode(params), "query"), {}, {"host": ["h"]}, b"")


async def _code(authn: Authenticator, key: access_keys.AccessKey) -> str:
    """ "OK" when the request is admitted, else the refusal's code."""
    try:
        await authn.admit(await authn.authenticate(_signed(key)))
    except ApiError as exc:
        return exc.code
    return "OK"


async def _live(feed: ChangeFeed) -> None:
    async with asyncio.timeout(10):
        while not feed.live:
            await asyncio.sleep(0.01)


VAULT = Vault(os.urandom(32))  # the replicas share one master key, as a deployment does


@contextlib.asynccontextmanager
async def replicas(
    pool: AsyncConnectionPool[Any], database_url: str
) -> AsyncIterator[list[tuple[ChangeFeed, Authenticator]]]:
    """Two replicas' key lookups, each with its own change feed, live."""
    out, tasks = [], []
    for _ in range(2):
        feed = ChangeFeed(database_url)
        tasks.append(asyncio.create_task(feed.run()))
        out.append((feed, Authenticator(pool, VAULT, RateLimit(1000, 1000), feed=feed)))
    try:
        for feed, _authn in out:
            await _live(feed)
        yield out
    finally:
        for feed, _authn in out:
            feed.stop()
        async with asyncio.timeout(10):
            await asyncio.gather(*tasks)


async def test_a_revoked_key_is_refused_at_once_by_every_replica(
    pool: AsyncConnectionPool[Any], database_url: str
) -> None:
    account_id, _ = await auth.create_account(pool, f"vod-cache-{uuid.uuid4().hex[:6]}")
    kept, revoked = [await access_keys.create(pool, VAULT, account_id) for _ in range(2)]
    async with replicas(pool, database_url) as both:
        await _check(pool, account_id, kept, revoked, both)


async def _check(
    pool: AsyncConnectionPool[Any], account_id: uuid.UUID, kept: access_keys.AccessKey,
    revoked: access_keys.AccessKey, replicas: list[tuple[ChangeFeed, Authenticator]],
) -> None:  # fmt: skip
    for _feed, authn in replicas:
        assert [await _code(authn, kept), await _code(authn, revoked)] == ["OK", "OK"]

    # A change that notifies nobody (triggers off for this session) is not seen: the key is served from the cache.
    async with pool.connection() as conn, conn.transaction():
        await conn.execute("SET LOCAL session_replication_role = replica")
        await conn.execute("UPDATE vod_access_keys SET revoked_at = now() WHERE access_key_id = %s", (kept.access_key_id,))  # fmt: skip
    assert [await _code(authn, kept) for _feed, authn in replicas] == ["OK", "OK"]

    # A revocation returns once both replicas dropped the key: refused at once, with no wait.
    assert await access_keys.revoke(pool, account_id, revoked.access_key_id)
    assert [await _code(authn, revoked) for _feed, authn in replicas] == ["InvalidAccessKeyId.Inactive"] * 2
    assert await _code(replicas[1][1], kept) == "OK"  # only that key was dropped

    # While a replica's feed is down it caches nothing: the database's word counts at once.
    feed, authn = replicas[0]
    feed.stop()
    async with asyncio.timeout(10):
        while feed.live:
            await asyncio.sleep(0.01)
    assert await _code(authn, kept) == "InvalidAccessKeyId.Inactive"


async def test_another_replicas_change_of_a_domain_drops_its_cached_answer(
    pool: AsyncConnectionPool[Any], database_url: str, event_log: EventLog
) -> None:
    account_id, _ = await auth.create_account(pool, f"vod-cache-{uuid.uuid4().hex[:6]}")
    feeds = [ChangeFeed(database_url) for _ in range(2)]
    tasks = [asyncio.create_task(feed.run()) for feed in feeds]
    try:
        for feed in feeds:
            await _live(feed)
        writer, reader = (
            VodDomains(event_log, VAULT, cname_suffix=None, ca_file=None, feed=f) for f in feeds
        )
        info = CertInfo(pool, reader, region="cn-shanghai", cname_suffix=None, nameservers=())
        await writer.add(account_id, {"DomainName": "c.example.test", "Sources": '[{"content":"192.0.2.1","type":"ipaddr"}]'})  # fmt: skip
        await writer.set_certificate(account_id, {"DomainName": "c.example.test", "SSLProtocol": "off"})

        async def status() -> str:
            got = await info.describe(account_id, {"DomainName": "c.example.test"})
            return str(got["CertInfos"]["CertInfo"][0]["ServerCertificateStatus"])

        async with asyncio.timeout(5):  # the reader may not have heard of the domain's notices yet
            while await status() != "off":
                await asyncio.sleep(0.01)
        assert await status() == "off"  # now served from the reader's cache
        await writer.set_certificate(account_id, {"DomainName": "c.example.test", "SSLProtocol": "on", "CertType": "free"})  # fmt: skip
        async with asyncio.timeout(
            5
        ):  # the notice reaches the reader in milliseconds, the cache's TTL is 30 s
            while await status() != "on":
                await asyncio.sleep(0.01)
    finally:
        for feed in feeds:
            feed.stop()
        async with asyncio.timeout(10):
            await asyncio.gather(*tasks)
