"""`certwatch admin`: finds the local stack's database, refuses bad input in one line."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from pathlib import Path
from typing import Any

import psycopg
import pytest

from certwatch.cli import stack
from certwatch.cli.main import main
from certwatch.console import users
from certwatch.contracts import quota as qc
from certwatch.platform import auth, db, localstack
from certwatch.platform.eventlog import EventLog
from certwatch.services import MIGRATIONS


def _run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = main(argv)
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def db_env(database_url: str, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("CERTWATCH_DATABASE_URL", database_url)
    return database_url


def test_bad_input_is_one_line_and_exit_2(db_env: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = _run(["admin", "create-account", "team-a"], capsys)
    assert code == 0
    existing = json.loads(out)["account_id"]
    cases = {
        ("create-account", ""): "name: must not be empty",
        ("create-account", "team-a"): "name: an account named 'team-a' already exists",
        ("purchase", "not-a-uuid"): "account_id: 'not-a-uuid' is not a UUID",
        ("purchase", str(uuid.uuid4())): "account_id: no account",
        ("purchase", existing, "--domains", "-5"): "--domains: ",
        ("purchase", existing, "--domains", "ten"): "--domains: must be a whole number, got 'ten'",
        ("purchase", existing, "--quantity", "0"): "--quantity: ",
        ("purchase", existing, "--years", "99"): "--years: ",
        ("rebuild", "no.such"): "projection: unknown 'no.such'; one of ",
    }
    for argv, expected in cases.items():
        code, out, err = _run(["admin", *argv], capsys)
        assert (code, out) == (2, ""), argv
        assert err.count("\n") == 1 and err.startswith(f"certwatch: {expected}"), (argv, err)


def test_purchase_for_an_existing_account_is_recorded(
    db_env: str, capsys: pytest.CaptureFixture[str]
) -> None:
    _, out, _ = _run(["admin", "create-account", "team-b"], capsys)
    account = json.loads(out)["account_id"]
    code, out, _ = _run(["admin", "purchase", account, "--domains", "5", "--years", "2"], capsys)
    assert code == 0 and "recorded 10 monitoring units" in out


@pytest.fixture
def no_database(monkeypatch: pytest.MonkeyPatch) -> None:
    """A database URL on a loopback port where nothing listens."""
    url = f"postgresql://certwatch@127.0.0.1:{localstack.free_port()}/x"
    monkeypatch.setenv("CERTWATCH_DATABASE_URL", url)


def test_an_unreachable_database_is_one_line_within_seconds(
    no_database: None, capsys: pytest.CaptureFixture[str]
) -> None:
    for argv in (["create-account", "x"], ["purchase", str(uuid.uuid4())], ["rebuild", "list"]):
        started = time.monotonic()
        code, _, err = _run(["admin", *argv], capsys)
        assert time.monotonic() - started < 5
        assert code == 2 and err.count("\n") == 1 and "cannot reach PostgreSQL at 127.0.0.1:" in err, err


def test_the_stacks_database_is_found_through_var(
    postgres_server: localstack.Postgres, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    monkeypatch.delenv("CERTWATCH_DATABASE_URL", raising=False)
    localstack.save_ports(tmp_path, {"postgres": postgres_server.port})
    code, out, err = _run(["admin", "--var", str(tmp_path), "rebuild", "list"], capsys)
    assert code == 0, err
    assert "classifier.status" in out.split()


async def _purchases(pool: Any, account_id: str) -> list[int]:
    events = await EventLog(pool).read_stream(qc.stream_id(account_id))
    return [e.data["units"] for e in events]


def test_bootstrap_completes_a_start_that_failed_half_way(database_url: str, tmp_path: Path) -> None:
    """An earlier start created the `local` account and died before saving its key; another
    saved the key but died before the purchase. Each later start finishes the job, once."""
    creds = tmp_path / "credentials.json"
    ports = {"inventory": 1, "prober": 2}

    async def scenario() -> None:
        pool = await db.open_pool(database_url, migrate=MIGRATIONS)
        try:
            async with pool.connection() as conn:
                await conn.execute(
                    "INSERT INTO accounts (account_id, name) VALUES (%s, 'local')", (uuid.uuid4(),)
                )
            await stack._bootstrap(database_url, creds, 7, ports)
            first = json.loads(creds.read_text())
            assert await _purchases(pool, first["account_id"]) == [7]
            stack._write_private(creds, {**first, "quota_purchased": False})  # died before recording it
            await stack._bootstrap(database_url, creds, 7, {"inventory": 3, "prober": 4})
            again = json.loads(creds.read_text())
            assert await _purchases(pool, first["account_id"]) == [7]  # the same event: no second purchase
            assert again["api_key"] == first["api_key"] and "quota_purchased" not in again
            assert again["ports"] == {"inventory": 3, "prober": 4}
            async with pool.connection() as conn:
                row = await (
                    await conn.execute("SELECT count(*) FROM accounts WHERE name = 'local'")
                ).fetchone()
            assert row is not None and row[0] == 1
        finally:
            await pool.close()

    asyncio.run(scenario())
    assert creds.stat().st_mode & 0o777 == 0o600
    with psycopg.connect(database_url) as conn:
        assert conn.execute("SELECT count(*) FROM api_keys").fetchone() == (1,)


def test_bad_input_is_refused_before_connecting(
    no_database: None, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = _run(["admin", "purchase", str(uuid.uuid4()), "--years", "-1"], capsys)
    assert code == 2 and err == "certwatch: --years: must be a whole number from 1 to 5\n"


async def test_bootstrap_registers_the_given_admin_key_once(
    db_env: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    key = "cw_abcdef123456_" + "s" * 43  # what the chart's bootstrap Secret holds
    monkeypatch.setenv("CERTWATCH_BOOTSTRAP_API_KEY", key)
    first = await asyncio.to_thread(_run, ["admin", "bootstrap", "admin"], capsys)
    again = await asyncio.to_thread(_run, ["admin", "bootstrap", "admin"], capsys)
    assert first[0] == again[0] == 0, first[2] + again[2]
    assert json.loads(first[1])["key_registered"] is True
    assert json.loads(again[1])["key_registered"] is False  # a rerun of the Job changes nothing
    assert json.loads(first[1])["account_id"] == json.loads(again[1])["account_id"]
    assert key not in first[1] + first[2]  # never printed
    pool = await db.open_pool(db_env, migrate=MIGRATIONS)
    try:
        principal = await auth.KeyVerifier(pool).verify(f"Bearer {key}")
    finally:
        await pool.close()
    assert principal.role == "admin" and str(principal.account_id) == json.loads(first[1])["account_id"]

    monkeypatch.setenv("CERTWATCH_BOOTSTRAP_API_KEY", "not-a-key")
    code, _, err = await asyncio.to_thread(_run, ["admin", "bootstrap", "admin"], capsys)
    assert (
        code == 2 and "CERTWATCH_BOOTSTRAP_API_KEY: expected an API key" in err and len(err.splitlines()) == 1
    )


async def test_bootstrap_creates_the_first_console_user_once_and_never_resets_it(
    db_env: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CERTWATCH_BOOTSTRAP_API_KEY", "cw_consol123456_" + "c" * 43)
    name = f"admin-{uuid.uuid4().hex[:6]}"
    password = "generated-by-the-chart-24"
    monkeypatch.setenv("CERTWATCH_BOOTSTRAP_CONSOLE_USER", name)
    monkeypatch.setenv("CERTWATCH_BOOTSTRAP_CONSOLE_PASSWORD", password)
    first = await asyncio.to_thread(_run, ["admin", "bootstrap", "console-admin"], capsys)
    monkeypatch.setenv("CERTWATCH_BOOTSTRAP_CONSOLE_PASSWORD", "another-password-entirely")
    again = await asyncio.to_thread(_run, ["admin", "bootstrap", "console-admin"], capsys)
    assert first[0] == again[0] == 0, first[2] + again[2]
    assert json.loads(first[1])["console_user_created"] is True
    assert json.loads(again[1])["console_user_created"] is False
    assert password not in first[1] + first[2]  # never printed
    pool = await db.open_pool(db_env, migrate=MIGRATIONS)
    try:
        user = await users.authenticate(pool, name, password)  # the first password still holds
        assert user is not None and str(user.account_id) == json.loads(first[1])["account_id"]
        assert await users.authenticate(pool, name, "another-password-entirely") is None
    finally:
        await pool.close()

    monkeypatch.setenv("CERTWATCH_BOOTSTRAP_CONSOLE_USER", "second")
    monkeypatch.setenv("CERTWATCH_BOOTSTRAP_CONSOLE_PASSWORD", "short")
    code, _, err = await asyncio.to_thread(_run, ["admin", "bootstrap", "console-admin"], capsys)
    assert code == 2 and err.startswith("certwatch: CERTWATCH_BOOTSTRAP_CONSOLE_PASSWORD: must be at least")
    monkeypatch.delenv("CERTWATCH_BOOTSTRAP_CONSOLE_PASSWORD")
    code, _, err = await asyncio.to_thread(_run, ["admin", "bootstrap", "console-admin"], capsys)
    assert code == 2 and "CERTWATCH_BOOTSTRAP_CONSOLE_PASSWORD: required" in err


def test_migrate_applies_the_schema_to_an_empty_database(
    postgres_server: localstack.Postgres, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    name = f"empty_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(postgres_server.url, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}".encode())
    url = postgres_server.url.rsplit("/", 1)[0] + f"/{name}"
    monkeypatch.setenv("CERTWATCH_DATABASE_URL", url)
    code, out, err = _run(["admin", "migrate"], capsys)
    assert code == 0 and "schema is current" in out, err
    with psycopg.connect(url) as conn:
        components = {r[0] for r in conn.execute("SELECT DISTINCT component FROM schema_migrations")}
    assert components == set(MIGRATIONS)
