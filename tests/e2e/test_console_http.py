"""The console's HTTP edge without a browser: cookie flags, cross-origin refusals (by
Sec-Fetch-Site and by Origin alone), rate-limited sign-in, no open redirect, a CSV upload
with a result per row, sign-out revoking the session's key, sessions shared by two console
replicas, and `certwatch accounts add-user`."""

from __future__ import annotations

import asyncio
import io
import re
import uuid
from collections.abc import AsyncIterator
from contextlib import redirect_stdout

import httpx
import pytest

from certwatch.cli.main import main
from certwatch.console import account_pages, backend, domain_pages, users
from certwatch.console.live import Pulse
from certwatch.console.sessions import Sessions, SignInLimit
from certwatch.console.web import Console, build_app
from certwatch.platform.config import Settings
from tests.support.stack import Stack, running_stack

PASSWORD = "a long enough password"


@pytest.fixture
async def stack(settings: Settings) -> AsyncIterator[Stack]:
    async with running_stack(settings, ("inventory", "classifier", "console")) as found:
        runtime = found.services["console"].runtime
        assert runtime is not None
        await users.add_user(runtime.pool, uuid.UUID(found.account_id), "carol", PASSWORD)
        yield found


@pytest.fixture
async def client(stack: Stack) -> AsyncIterator[httpx.AsyncClient]:
    base = f"http://127.0.0.1:{stack.services['console'].port}"
    async with httpx.AsyncClient(base_url=base, timeout=10) as found:
        yield found


async def _sign_in(client: httpx.AsyncClient, password: str = PASSWORD, **extra: str) -> httpx.Response:
    return await client.post("/signin", data={"username": "carol", "password": password, **extra})


def _cookie(answer: httpx.Response) -> dict[str, str]:
    token = answer.cookies["certwatch_session"]
    return {"cookie": f"certwatch_session={token}"}


async def test_cookie_and_cross_origin_refusals(stack: Stack, client: httpx.AsyncClient) -> None:
    assert (await client.get("/healthz")).text == "SERVING"
    assert (await client.get("/domains")).headers["location"] == "/signin?next=/domains"
    signed = await _sign_in(client, next="//evil.example/")
    assert signed.status_code == 303 and signed.headers["location"] == "/domains"  # never off-site
    flags = signed.headers["set-cookie"].lower()
    assert all(f in flags for f in ("httponly", "secure", "samesite=strict", "path=/"))
    me = _cookie(signed)
    page = await client.get("/domains", headers=me)
    assert page.status_code == 200 and "No domain matches." in page.text
    assert "frame-ancestors 'none'" in page.headers["content-security-policy"]

    form = {"domains": "one.example.com, two.example.com"}
    refusals = [
        {"sec-fetch-site": "cross-site", "origin": "http://evil.example"},
        {"sec-fetch-site": "same-site"},
        {"origin": "http://evil.example"},  # an older browser: Origin alone
        {"origin": "null"},
    ]
    for headers in refusals:
        answer = await client.post("/domains/new", data=form, headers={**me, **headers})
        assert answer.status_code == 403, headers
        assert "cross-origin request refused" in answer.text
    listed = await client.get("/domains", headers=me)
    assert "one.example.com" not in listed.text  # nothing was added

    same = {**me, "sec-fetch-site": "same-origin", "origin": str(client.base_url).rstrip("/")}
    csv = b"Domain,Port\none.example.com,443\nbad..name,443\n"
    added = await client.post("/domains/new", headers=same, data={"domains": ""},
                              files={"csv": ("domains.csv", csv, "text/csv")})  # fmt: skip
    assert added.status_code == 200
    assert re.search(r'class="added"><td>\d+</td><td>one\.example\.com', added.text), added.text
    assert re.search(
        r'class="rejected"><td>3</td>.*\n.*Rejected: domain: the name has an empty label', added.text
    )
    assert "one.example.com" in (await client.get("/domains?q=one", headers=me)).text
    assert "one.example.com" not in (await client.get("/domains?q=zzz", headers=me)).text
    assert (await client.get("/domains/not-a-uuid", headers=me)).status_code == 400
    assert (await client.get(f"/domains/{uuid.uuid4()}", headers=me)).status_code == 404

    # The other pages, each over its gRPC API with the session's (non-admin) key.
    health = await client.get("/health", headers=me)
    assert health.status_code == 200
    assert all(f'<th scope="row">{name}</th>' in health.text for name in ("inventory", "classifier"))
    assert "SERVING" in health.text
    quota = await client.get("/quota", headers=me)
    assert quota.status_code == 200 and "Remaining" in quota.text
    assert (
        await client.post("/contacts", headers=same, data={"name": "Ops", "email": "ops@example.com"})
    ).status_code == 303
    assert "ops@example.com" in (await client.get("/contacts", headers=me)).text
    hook = {"name": "Hook", "webhook_url": "http://hooks.example.com/x", "webhook_secret": "s" * 16}
    refused = await client.post("/contacts", headers=same, data=hook)
    assert refused.status_code == 400 and "contact.webhook_url" in refused.text
    wecom = "https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=693a91f6-7xxx-4bc4-97a0-0ec2sifa5aaa"
    robot = {"name": "Robot", "wecom_webhook": wecom, "apprise_url": "ntfy://alerts-topic"}
    assert (await client.post("/contacts", headers=same, data=robot)).status_code == 303
    listed = (await client.get("/contacts", headers=me)).text
    assert "WeCom, Apprise" in listed and "ntfy://" not in listed
    assert 'type="month"' in (await client.get("/reports", headers=me)).text
    bad_month = await client.get("/reports/monthly?month=2026-13&format=csv", headers=me)
    assert bad_month.status_code == 400 and "month" in bad_month.text

    # Sign-out ends the session and revokes its API key.
    runtime = stack.services["console"].runtime
    assert runtime is not None
    async with runtime.pool.connection() as conn:
        cur = await conn.execute("SELECT count(*) FROM api_keys WHERE account_id = %s AND revoked_at IS NULL",
                                 (uuid.UUID(stack.account_id),))  # fmt: skip
        [(live_before,)] = await cur.fetchall()
    out = await client.post("/signout", headers=same)
    assert out.status_code == 303
    assert (await client.get("/domains", headers=me)).status_code == 303
    async with runtime.pool.connection() as conn:
        cur = await conn.execute("SELECT count(*) FROM api_keys WHERE account_id = %s AND revoked_at IS NULL",
                                 (uuid.UUID(stack.account_id),))  # fmt: skip
        [(live_after,)] = await cur.fetchall()
    assert live_after == live_before - 1


async def test_sign_in_is_rate_limited(client: httpx.AsyncClient) -> None:
    for _ in range(5):
        assert (await _sign_in(client, "wrong password!")).status_code == 401
    limited = await _sign_in(client)  # even the right password, for now
    assert limited.status_code == 429 and "Too many failed attempts" in limited.text
    assert int(limited.headers["retry-after"]) > 0


async def test_accounts_add_user(stack: Stack, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CERTWATCH_DATABASE_URL", stack.settings.database_url)

    def run(*argv: str) -> tuple[int, str]:
        out = io.StringIO()
        with redirect_stdout(out):
            code = main(["accounts", "add-user", *argv])
        return code, out.getvalue()

    code, out = await asyncio.to_thread(run, "dave", "--account", stack.account_id)
    assert code == 0 and "console user dave created" in out
    password = out.split("password: ", 1)[1].strip()
    runtime = stack.services["console"].runtime
    assert runtime is not None
    assert await users.authenticate(runtime.pool, "dave", password) is not None
    assert await users.authenticate(runtime.pool, "dave", password + "x") is None
    code, _ = await asyncio.to_thread(run, "dave", "--account", stack.account_id)
    assert code == 2  # exists already
    code, _ = await asyncio.to_thread(run, "erin", "--account", str(uuid.uuid4()))
    assert code == 2  # no such account
    code, _ = await asyncio.to_thread(run, "bad name!", "--account", stack.account_id)
    assert code == 2


async def test_two_console_replicas_share_a_session_and_sign_out_ends_it_everywhere(
    stack: Stack, client: httpx.AsyncClient
) -> None:
    """A second console app of its own (its own Sessions, no shared memory) over the same
    database: the session signed in on one works on the other; signing out on the other
    ends it on both. The table holds a hash of the token and the key sealed, never either."""
    runtime = stack.services["console"].runtime
    assert runtime is not None
    calls = backend.connect(stack.settings, ["inventory", "classifier"])
    replica = Console(runtime.pool, calls, Sessions(runtime.pool), SignInLimit(), Pulse(), serving=True)
    app = build_app(replica, [*account_pages.ROUTES, *domain_pages.ROUTES])
    try:
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://127.0.0.1"
        ) as other:
            signed = await _sign_in(client)
            me = _cookie(signed)
            token = signed.cookies["certwatch_session"]
            there = await other.get("/domains", headers=me)
            assert there.status_code == 200 and "No domain matches." in there.text
            async with runtime.pool.connection() as conn:
                cur = await conn.execute("SELECT token_hash, sealed_key FROM console_sessions")
                stored = await cur.fetchall()
            assert stored and all(token.encode() not in bytes(h) + bytes(k) for h, k in stored)
            assert all(b"cw_" not in bytes(k) for _, k in stored)  # the API key is sealed
            same = {**me, "sec-fetch-site": "same-origin", "origin": "http://127.0.0.1"}
            assert (await other.post("/signout", headers=same)).status_code == 303
            assert (await client.get("/domains", headers=me)).status_code == 303  # signed out here too
            assert (await other.get("/domains", headers=me)).status_code == 303
    finally:
        await calls.close()
