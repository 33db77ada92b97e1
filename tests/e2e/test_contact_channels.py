"""A contact with a WeCom robot, a Lark bot, a signed webhook and an Apprise URL, entered through
`certwatch contacts add|update` (the inventory's gRPC API), reaches each of them through the
notifier: the fake vendors check keys and signatures. Robot secrets are sealed: neither the
events, the CLI's answers nor the logs carry them in clear."""

from __future__ import annotations

import asyncio
import json
import logging
from dataclasses import replace

import pytest

from certwatch.cli.main import main
from certwatch.platform.config import Settings
from tests.support.robot_servers import RobotState
from tests.support.stack import running_stack

WECOM_KEY = "wecomkey0123456789"
LARK_HOOK = "larkhook0123"
LARK_SECRET = "larksecret0123"
WEBHOOK_SECRET = "whsecret-0123456789-abcdef"


async def test_robots_webhook_and_apprise_entered_by_cli_are_delivered(
    settings: Settings, robots: RobotState, robot_url: str, capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:  # fmt: skip
    robots.wecom.add(WECOM_KEY)
    robots.lark[LARK_HOOK] = LARK_SECRET
    robots.webhook_secret = WEBHOOK_SECRET
    caplog.set_level(logging.DEBUG)
    apprise = robot_url.replace("http://", "json://") + "/apprise"
    async with running_stack(
        replace(settings, allow_custom_webhooks=True), ("inventory", "notifier")
    ) as stack:

        async def cli(*argv: str, service: str) -> tuple[int, str, str]:
            server = f"127.0.0.1:{stack.services[service].port}"
            code = await asyncio.to_thread(main, [*argv, "--api-key", stack.api_key, "--server", server])
            captured = capsys.readouterr()
            return code, captured.out, captured.err

        # Refused with the field and the rule: a webhook in clear, a webhook without a secret.
        code, _, err = await cli("contacts", "add", "--name", "X", "--webhook-url", "http://hooks.example.com/x",
                                 "--webhook-secret", WEBHOOK_SECRET, service="inventory")  # fmt: skip
        assert code != 0 and "contact.webhook_url" in err and "https" in err, err
        code, _, err = await cli("contacts", "add", "--name", "X", "--webhook-url", f"{robot_url}/hook",
                                 service="inventory")  # fmt: skip
        assert code != 0 and "contact.webhook_secret" in err, err
        code, _, err = await cli(
            "contacts", "add", "--name", "X", "--apprise-url", "not a url", service="inventory"
        )
        assert code != 0 and "contact.apprise_url" in err, err

        code, out, err = await cli(
            "contacts", "add", "--name", "Everywhere", "--json",
            "--wecom-webhook", f"{robot_url}/cgi-bin/webhook/send?key={WECOM_KEY}",
            "--lark-webhook", f"{robot_url}/open-apis/bot/v2/hook/{LARK_HOOK}", "--lark-secret", LARK_SECRET,
            "--webhook-url", f"{robot_url}/hook", "--webhook-secret", WEBHOOK_SECRET, "--apprise-url", apprise,
            service="inventory",
        )  # fmt: skip
        assert code == 0, out + err
        saved = json.loads(out)
        assert saved["wecom_webhook"].endswith(WECOM_KEY) and saved["lark_webhook"].endswith(LARK_HOOK)
        assert saved["has_lark_secret"] and saved["has_webhook_secret"] and saved["has_apprise_url"]
        assert LARK_SECRET not in out and WEBHOOK_SECRET not in out and apprise not in out

        code, out, err = await cli("contacts", "test", saved["id"], "--json", service="notifier")
        assert code == 0, out + err
        assert json.loads(out) == [
            {"channel": c, "outcome": "delivered", "detail": ""}
            for c in ("wecom", "lark", "webhook", "apprise")
        ]
        assert [len(robots.of(v)) for v in ("wecom", "lark", "webhook", "apprise")] == [1, 1, 1, 1]
        assert "certwatch: test message" in robots.of("wecom")[0].body["markdown"]["content"]

        # The Lark secret rotated at the vendor and updated by the CLI: the bot refuses, then accepts.
        robots.lark[LARK_HOOK] = "larksecretrotated"
        code, out, _ = await cli("contacts", "test", saved["id"], "--json", service="notifier")
        assert (
            code == 1
            and json.loads(out)[1]["outcome"] == "failed"
            and "19021" in json.loads(out)[1]["detail"]
        )
        code, out, err = await cli("contacts", "update", saved["id"], "--lark-secret", "larksecretrotated",
                                   "--json", service="inventory")  # fmt: skip
        assert code == 0 and json.loads(out)["has_webhook_secret"], err  # the other secrets stay
        code, out, _ = await cli("contacts", "test", saved["id"], "--json", service="notifier")
        assert code == 0 and {r["outcome"] for r in json.loads(out)} == {"delivered"}, out

        # Clearing the webhook clears its secret too.
        code, out, err = await cli("contacts", "update", saved["id"], "--webhook-url", "", "--json",
                                   service="inventory")  # fmt: skip
        assert (
            code == 0
            and not json.loads(out).get("has_webhook_secret")
            and not json.loads(out).get("webhook_url")
        )

        runtime = stack.services["inventory"].runtime
        assert runtime is not None
        async with runtime.pool.connection() as conn:
            for secret in (LARK_SECRET, "larksecretrotated", WEBHOOK_SECRET, WECOM_KEY, apprise):
                cur = await conn.execute(
                    "SELECT count(*) FROM events WHERE data::text LIKE %s OR metadata::text LIKE %s",
                    (f"%{secret}%", f"%{secret}%"),
                )
                assert (await cur.fetchone()) == (0,), secret
    logged = "\n".join(r.getMessage() + repr(r.__dict__) for r in caplog.records)
    leaked = [
        s
        for s in (LARK_SECRET, "larksecretrotated", WEBHOOK_SECRET, WECOM_KEY, f"{robot_url}/apprise")
        if s in logged
    ]
    assert not leaked, [line for line in logged.splitlines() if any(s in line for s in leaked)][:3]
