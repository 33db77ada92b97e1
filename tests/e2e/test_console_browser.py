"""The web console in a real headless Chromium (Debian's, driven by Playwright): sign in, add
a domain served by a local TLS server, watch it turn SECURE and then ABNORMAL without a
reload, read its Monitoring Details, download both reports, set the alert rules and the
account's time zone, mute and acknowledge the domain's alerts, read its delivery log, see a
hosting subscription's instances and lifecycle, and be refused another account's domain and
a cross-site form post. Screenshots go to $CERTWATCH_TEST_OUTPUT (default
./test-output)/console/."""

from __future__ import annotations

import asyncio
import os
import subprocess
import uuid
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pytest
from playwright.async_api import Browser, Page, async_playwright, expect

from certwatch.console import users
from certwatch.contracts import accounts
from certwatch.platform.config import Settings
from certwatch.v1 import inventory_pb2 as ipb
from certwatch.v1 import inventory_pb2_grpc
from tests.support.pki import TestPKI
from tests.support.stack import new_account, running_stack
from tests.support.tls_server import free_port_on, serve, server_context, tls_server

CHROMIUM = "/usr/bin/chromium"
OUTPUT = Path(os.environ.get("CERTWATCH_TEST_OUTPUT", "test-output")) / "console"
PASSWORD = "correct horse battery staple"
LIVE_TIMEOUT_MS = 30_000

pytestmark = pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="needs Debian's chromium (make deps)")


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return replace(settings, probe_interval_s=0.5)


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    async with async_playwright() as p:
        found = await p.chromium.launch(executable_path=CHROMIUM, headless=True)
        try:
            yield found
        finally:
            await found.close()


async def _shot(page: Page, name: str) -> None:
    OUTPUT.mkdir(parents=True, exist_ok=True)
    await page.screenshot(path=str(OUTPUT / f"{name}.png"), full_page=True)


def _pdf_text(path: Path) -> str:
    return subprocess.run(["pdftotext", str(path), "-"], check=True, capture_output=True, text=True).stdout


def _evil_site(target: str) -> str:
    """A page on another origin that posts a form to the console as soon as it loads."""
    return (f'<!DOCTYPE html><html><body><form id="f" method="post" action="{target}">'
            '<input name="x" value="1"></form><script>document.getElementById("f").submit()</script>'
            "</body></html>")  # fmt: skip


async def _answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, body: str) -> None:
    await reader.readuntil(b"\r\n\r\n")
    data = body.encode()
    writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nConnection: close\r\n"
                 + f"Content-Length: {len(data)}\r\n\r\n".encode() + data)  # fmt: skip
    await writer.drain()


async def test_console_in_chromium(
    settings: Settings, pki: TestPKI, browser: Browser, tmp_path: Path
) -> None:
    port = free_port_on(("127.0.0.1",))
    stack_settings = replace(settings, resolve_overrides=(f"site.test:{port}:127.0.0.1",))
    names = ("inventory", "prober", "classifier", "notifier", "hosting", "console")
    async with running_stack(stack_settings, names) as stack:
        console_service = stack.services["console"]
        assert console_service.runtime is not None
        await users.add_user(console_service.runtime.pool, uuid.UUID(stack.account_id), "alice", PASSWORD)
        base = f"http://127.0.0.1:{console_service.port}"
        context = await browser.new_context(accept_downloads=True, viewport={"width": 1280, "height": 900})
        page = await context.new_page()

        # Sign in: the list redirects there first.
        await page.goto(f"{base}/domains")
        assert page.url.startswith(f"{base}/signin")
        await page.get_by_label("Username").fill("alice")
        await page.get_by_label("Password").fill(PASSWORD)
        await page.get_by_role("button", name="Sign in").click()
        await expect(page.get_by_role("heading", name="Domains")).to_be_visible()
        await page.keyboard.press("Tab")  # the keyboard reaches the skip link first
        assert await page.evaluate("document.activeElement.textContent") == "Skip to content"
        [cookie] = await context.cookies()
        assert cookie["httpOnly"] and cookie["secure"] and cookie["sameSite"] == "Strict"

        with tls_server(server_context(*pki.server_files(pki.leaf("site.test", org="Site Org"))), port=port):
            # Add it (comma list), with its result row.
            await page.get_by_role("link", name="Add domains").click()
            await page.get_by_label("Domains, separated by commas").fill(f"site.test:{port}, bad..name")
            await page.get_by_role("button", name="Add").click()
            await expect(page.locator("tr.added")).to_contain_text(f"site.test:{port}")
            await expect(page.locator("tr.rejected")).to_contain_text("bad..name")
            await _shot(page, "1-added")
            href = await page.locator("tr.added a").get_attribute("href")
            assert href is not None
            domain_id = href.rsplit("/", 1)[1]

            # The list turns SECURE by itself: the marker shows the page was never reloaded.
            await page.get_by_role("link", name="Domains", exact=True).click()
            await page.evaluate("window.certwatchMarker = 'kept'")
            badge = page.locator(f"#row-{domain_id} .badge")
            await expect(badge).to_have_text("SECURE", timeout=LIVE_TIMEOUT_MS)
            assert await page.evaluate("window.certwatchMarker") == "kept"
            await _shot(page, "2-list-secure")
            mobile = await browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True,
                                               storage_state=await context.storage_state())  # fmt: skip
            phone = await mobile.new_page()
            await phone.goto(f"{base}/domains")
            await expect(phone.locator(f"#row-{domain_id} .badge")).to_have_text("SECURE")
            await _shot(phone, "3-list-phone")
            await mobile.close()

            # Search and filter narrow the list in place.
            await page.get_by_label("Search").fill("nothing-like-this")
            await expect(page.get_by_text("No domain matches.")).to_be_visible()
            await page.get_by_label("Search").fill("site")
            await expect(badge).to_have_text("SECURE")

            # Monitoring Details, every section.
            await page.get_by_role("link", name=f"site.test:{port}").click()
            for title in ("Monitoring Details", "ATS Check", "IP Content", "Certificate Information",
                          "Certificate Chain Information", "Contact Information", "Domain Name Update"):  # fmt: skip
                await expect(page.get_by_role("heading", name=title, exact=True)).to_be_visible()
            await expect(page.locator("main")).to_contain_text("Site Org")
            await page.evaluate("window.certwatchMarker = 'kept'")
            await _shot(page, "4-details-secure")

        # The server is gone: ABNORMAL appears on the open page without a reload.
        live = page.locator("#live-status .badge")
        await expect(live).to_have_text("ABNORMAL", timeout=LIVE_TIMEOUT_MS)
        await expect(page.locator("#live-status")).to_contain_text("NETWORK_CONNECTION_FAILURE")
        assert await page.evaluate("window.certwatchMarker") == "kept"
        await _shot(page, "5-details-abnormal")

        # Both reports download, and are what they say.
        async with page.expect_download() as pdf_download:
            await page.get_by_role("link", name="Download Report (PDF)").click()
        report = tmp_path / "report.pdf"
        await (await pdf_download.value).save_as(report)
        text = _pdf_text(report)
        assert "Monitoring report: site.test" in text and "Certificate Chain Information" in text
        await page.get_by_role("link", name="Reports").click()
        async with page.expect_download() as monthly_download:
            await page.get_by_role("button", name="Download Monthly Report").click()
        monthly = tmp_path / "monthly.pdf"
        await (await monthly_download.value).save_as(monthly)
        assert f"Monthly report {datetime.now(UTC):%Y-%m}" in _pdf_text(monthly)
        assert f"site.test:{port}" in _pdf_text(monthly)

        # Alert rules: the account's time zone, saved through the notifier, is the account's one fact.
        await page.get_by_role("link", name="Alerts", exact=True).click()
        await page.get_by_label("Time zone").fill("Asia/Shanghai")
        await page.get_by_label("Alert when fewer days are left").fill("21")
        await page.get_by_role("button", name="Save rules").click()
        await expect(page.get_by_label("Time zone")).to_have_value("Asia/Shanghai")
        await expect(page.get_by_label("Alert when fewer days are left")).to_have_value("21")
        async with stack.services["console"].runtime.pool.connection() as conn:
            cur = await conn.execute("SELECT data->>'time_zone' FROM events WHERE stream_id = %s",
                                     (accounts.stream_id(stack.account_id),))  # fmt: skip
            assert [r[0] for r in await cur.fetchall()] == ["Asia/Shanghai"]
        await page.get_by_label("Time zone").fill("Mars/Olympus")
        await page.get_by_role("button", name="Save rules").click()
        await expect(page.locator("main")).to_contain_text("time_zone")  # refused, field named
        await _shot(page, "6-alert-rules")

        # The domain's alerts: mute (in the account's zone), acknowledge, the delivery log.
        await page.goto(f"{base}/domains/{domain_id}/alerts")
        await page.get_by_label("Mute until").fill("2030-01-02T03:04")
        await page.get_by_role("button", name="Mute").click()
        await expect(page.locator("#muted")).to_have_text(
            "until 2030-01-01 19:04:00 UTC"
        )  # Shanghai is UTC+8
        await page.get_by_role("button", name="Acknowledge the incident").click()
        await expect(page.locator("#acknowledged")).to_contain_text("acknowledged")
        await expect(page.get_by_role("heading", name="Delivery log")).to_be_visible()
        await _shot(page, "7-domain-alerts")

        # Hosting: a subscription's instances with their state, and one's lifecycle.
        await page.get_by_role("link", name="Hosting", exact=True).click()
        await page.get_by_label("Years").select_option("2")
        await page.get_by_role("button", name="Subscribe").click()
        await expect(page.locator("tr.instance")).to_have_count(2)
        await expect(page.locator("tr.instance").first).to_contain_text("PENDING_APPLICATION")
        await page.locator("tr.instance a").first.click()
        await expect(page.locator("ol.lifecycle")).to_contain_text("PENDING_APPLICATION")
        await _shot(page, "8-hosting-lifecycle")

        # Another account's domain is not found; so is a domain id that does not exist.
        _, other_key = await new_account(settings.database_url, "other")
        async with stack.channel("inventory") as ich:
            theirs = await inventory_pb2_grpc.InventoryStub(ich).AddDomains(
                ipb.AddDomainsRequest(domains="theirs.example.com"),
                metadata=(("authorization", f"Bearer {other_key}"),),
            )
        their_id = theirs.results[0].domain.id
        for missing in (their_id, str(uuid.uuid4())):
            answer = await page.goto(f"{base}/domains/{missing}")
            assert answer is not None and answer.status == 404
            answer = await page.goto(f"{base}/domains/{missing}/report?format=pdf")
            assert answer is not None and answer.status == 404
        await _shot(page, "9-other-account-404")

        # A form on another origin that posts to the console is refused, and changes nothing.
        target = f"{base}/domains/{domain_id}/disable"
        with serve(lambda r, w: _answer(r, w, _evil_site(target)), "127.0.0.1", 0, None) as evil_port:
            async with page.expect_response(target) as refused:
                await page.goto(f"http://localhost:{evil_port}/")
            answer = await refused.value
            assert answer.status == 403
            assert answer.request.headers.get("origin") == f"http://localhost:{evil_port}"
        await page.goto(f"{base}/domains/{domain_id}")
        await expect(page.get_by_role("button", name="Disable monitoring")).to_be_visible()

        # Sign out: the session is gone.
        await page.get_by_role("button", name="Sign out").click()
        await page.goto(f"{base}/domains")
        assert page.url.startswith(f"{base}/signin")
        await context.close()
