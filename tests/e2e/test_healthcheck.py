"""`certwatch healthcheck`: the image's HEALTHCHECK asks the real service on loopback."""

from __future__ import annotations

import asyncio

import pytest

from certwatch.cli import healthcheck
from certwatch.cli.main import main
from certwatch.platform.config import Settings
from tests.support.stack import running_stack, wait_for
from tests.support.tls_server import closed_port, http_server


async def test_a_serving_grpc_service_is_healthy_and_a_stopped_one_is_not(settings: Settings) -> None:
    async with running_stack(settings, ("inventory",)) as stack:
        port = stack.services["inventory"].port

        async def serving() -> bool:
            ok, _ = await asyncio.to_thread(healthcheck.healthy, "inventory", port)
            return ok

        await wait_for(serving, timeout=20)
        ok, seen = await asyncio.to_thread(healthcheck.healthy, "inventory", port)
        assert (ok, seen) == (True, "SERVING")
    ok, seen = await asyncio.to_thread(healthcheck.healthy, "inventory", port)
    assert not ok and seen.startswith("UNAVAILABLE")


def test_an_http_service_is_healthy_only_on_200() -> None:
    with http_server() as port:  # answers 400 to everything
        ok, seen = healthcheck.healthy("console", port)
    assert not ok and "400" in seen
    with closed_port() as port:
        ok, _ = healthcheck.healthy("console", port)
    assert not ok


def test_an_unknown_or_missing_service_is_refused_in_one_line(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("CERTWATCH_SERVICE", raising=False)
    for command in ("healthcheck", "serve"):
        assert main([command]) == 2
        captured = capsys.readouterr()
        err = captured.err  # a refusal goes to stderr, one line, as every command's
        assert captured.out == "" and "or set CERTWATCH_SERVICE" in err and len(err.splitlines()) == 1, err
    monkeypatch.setenv("CERTWATCH_SERVICE", "prober")
    with closed_port() as port:
        monkeypatch.setenv("CERTWATCH_PROBER_PORT", str(port))
        assert main(["healthcheck"]) == 1
    assert capsys.readouterr().out.startswith("prober: UNAVAILABLE")
