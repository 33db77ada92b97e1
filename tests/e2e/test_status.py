"""`certwatch status` and the staleness warnings, against a running stack that is then broken:
a projection that cannot apply an event, a service that stops answering, a domain whose
last check is older than two intervals."""

from __future__ import annotations

import asyncio
import json
from dataclasses import replace
from pathlib import Path

import psycopg
import pytest

from certwatch.cli.main import main
from certwatch.contracts import status as sc
from certwatch.platform.config import Settings
from certwatch.platform.events import NewEvent
from tests.support.pki import TestPKI
from tests.support.stack import Stack, running_stack, wait_for
from tests.support.tls_server import server_context, tls_server


def _credentials(stack: Stack, path: Path) -> str:
    ports = {name: s.port for name, s in stack.services.items()}
    path.write_text(json.dumps({"api_key": stack.api_key, "ports": ports}))
    return str(path)


async def _cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = await asyncio.to_thread(main, list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


async def test_status_names_what_is_stuck_since_when_and_why(
    settings: Settings, pki: TestPKI, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    files = pki.server_files(pki.leaf("status.test"))
    with tls_server(server_context(*files)) as port:
        fast = replace(settings, resolve_overrides=(f"status.test:{port}:127.0.0.1",))
        async with running_stack(fast) as stack:
            creds = _credentials(stack, tmp_path / "credentials.json")
            code, out, _ = await _cli(capsys, "domains", "add", f"status.test:{port}", "--enable",
                                      "--credentials", creds)  # fmt: skip
            assert code == 0, out

            async def healthy() -> str | None:
                code, out, _ = await _cli(capsys, "status", "--credentials", creds)
                return out if code == 0 else None

            out = await wait_for(healthy, timeout=20, every=0.3)
            for name in stack.services:
                assert name in out
            assert "classifier.status" in out and "outbox.relay" in out and "scheduler" in out
            assert "observationconsumer" in out
            _, out, err = await _cli(capsys, "domains", "list", "--credentials", creds)
            assert "stale" not in out + err

            # A verdict the status view cannot read: it fails on it, retrying.
            bad = NewEvent(sc.DOMAIN_CLASSIFIED, {"domain_id": "not-a-domain"})
            await stack.services["prober"].runtime.event_log.append(  # type: ignore[union-attr]
                "status-broken", [bad], expected_version=None
            )

            async def failing() -> tuple[str, dict[str, object]] | None:
                code, out, _ = await _cli(capsys, "status", "--credentials", creds)
                if code == 0:
                    return None
                reports = json.loads((await _cli(capsys, "status", "--json", "--credentials", creds))[1])
                classifier = next(r for r in reports if r["service"] == "classifier")
                return None if classifier["healthy"] else (out, classifier)

            # Every reader of verdicts fails on it; the classifier's own views among them.
            out, classifier = await wait_for(failing, timeout=20, every=0.3)
            lines = [x for x in out.splitlines() if "failing since" in x]
            assert lines and any("ValidationError" in x for x in lines), out  # each names its own error
            assert any("classifier.status failing" in p or "classifier.details failing" in p
                       for p in classifier["problems"]), classifier  # type: ignore[attr-defined]  # fmt: skip
            code, out, err = await _cli(capsys, "domains", "list", "--credentials", creds)
            assert code == 0 and "status.test" in out
            assert "may be stale" in err and "classifier." in err and "ValidationError" in err

            # A service that is gone is named, and status still answers within its timeouts.
            await stack.services["vod"].stop()
            code, out, _ = await _cli(capsys, "status", "--credentials", creds)
            assert code == 1
            assert any(x.startswith("vod") and "UNREACHABLE" in x for x in out.splitlines()), out


async def test_a_domain_not_checked_for_two_intervals_is_flagged_stale(
    settings: Settings, pki: TestPKI, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    files = pki.server_files(pki.leaf("old.test"))
    with tls_server(server_context(*files)) as port:
        fast = replace(settings, resolve_overrides=(f"old.test:{port}:127.0.0.1",), probe_interval_s=60)
        async with running_stack(fast) as stack:
            creds = _credentials(stack, tmp_path / "credentials.json")
            await _cli(capsys, "domains", "add", f"old.test:{port}", "--enable", "--credentials", creds)

            async def secure() -> dict[str, object] | None:
                _, out, _ = await _cli(capsys, "domains", "list", "--json", "--credentials", creds)
                [domain] = json.loads(out)
                return domain if domain["status"] == "SECURE" else None

            domain = await wait_for(secure, timeout=15)
            assert not domain.get("stale")
            async with await psycopg.AsyncConnection.connect(settings.database_url, autocommit=True) as conn:
                # an old verdict is not an old check: a stable domain appends no verdict
                await conn.execute("UPDATE inventory_domains SET last_checked_at = now() - interval '1 day'")
            _, out, _ = await _cli(capsys, "domains", "list", "--json", "--credentials", creds)
            assert not json.loads(out)[0].get("stale")
            async with await psycopg.AsyncConnection.connect(settings.database_url, autocommit=True) as conn:
                await conn.execute(  # the last verdict and the last observation alike
                    "UPDATE inventory_domains SET last_checked_at = now() - interval '121 seconds'"
                )
                await conn.execute("UPDATE probe_latest SET observed_at = now() - interval '121 seconds'")
            code, out, err = await _cli(capsys, "domains", "list", "--credentials", creds)
            assert code == 0 and "SECURE (stale)" in out and "not checked for more than two" in err
            assert "2m ago" in out  # the CHECKED column
            _, out, _ = await _cli(capsys, "domains", "list", "--json", "--credentials", creds)
            assert json.loads(out)[0]["stale"] is True
            _, out, _ = await _cli(
                capsys, "domains", "show", str(domain["id"]), "--json", "--credentials", creds
            )
            assert json.loads(out)["stale"] is True
            # ENABLE_FAILED is not probed again until the user acts: old, but not stale.
            async with await psycopg.AsyncConnection.connect(settings.database_url, autocommit=True) as conn:
                await conn.execute("UPDATE inventory_domains SET status = 'ENABLE_FAILED'")
            _, out, _ = await _cli(
                capsys, "domains", "show", str(domain["id"]), "--json", "--credentials", creds
            )
            assert not json.loads(out).get("stale")
            # Nor is an enable check not concluded yet (a retry clears the verdict's time), however
            # old the observation before it (trial: 'ENABLING (stale) 33m ago' right after a recheck).
            async with await psycopg.AsyncConnection.connect(settings.database_url, autocommit=True) as conn:
                await conn.execute("UPDATE inventory_domains SET status = 'ENABLING', last_checked_at = NULL")
            code, out, err = await _cli(capsys, "domains", "show", str(domain["id"]), "--credentials", creds)
            assert code == 0 and "(stale)" not in out and "not checked for more than two" not in err
