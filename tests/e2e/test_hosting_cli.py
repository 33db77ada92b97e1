"""`certwatch hosting ...` and `certwatch certs ...` against the hosting service and pebble."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.serialization import pkcs12

from certwatch.cli.main import main
from certwatch.platform.config import Settings
from certwatch.platform.shredding import new_master_key, parse_master_key
from tests.support.pebble import pebble
from tests.support.pki import TestPKI, make_key
from tests.support.stack import new_account, running_stack, wait_for

INSTANCE_FIELDS = {"id", "state", "year", "certificate_id"}
CERT_FIELDS = {"id", "instance_id", "serial", "not_before", "not_after", "names", "issuer"}


async def test_hosting_and_certs_commands(
    settings: Settings, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    with pebble(nonce_reject_percent=0) as ca, TestPKI() as p:
        settings = replace(settings, ca_file=p.ca_file)  # uploads are verified against its root
        monkeypatch.setenv("CERTWATCH_ACME_DIRECTORY", ca.directory)
        monkeypatch.setenv("CERTWATCH_ACME_CA_FILE", ca.ca_file)
        monkeypatch.setenv("CERTWATCH_ACME_HTTP01_ADDR", f"127.0.0.1:{ca.http_port}")
        monkeypatch.setenv("CERTWATCH_HOSTING_POLL_S", "0.2")
        async with running_stack(settings, ("hosting",)) as stack:
            server = f"127.0.0.1:{stack.services['hosting'].port}"

            async def cli(*argv: str, key: str = stack.api_key) -> tuple[int, str, str]:
                code = await asyncio.to_thread(main, [*argv, "--api-key", key, "--server", server])
                captured = capsys.readouterr()
                return code, captured.out, captured.err

            code, _, err = await cli("hosting", "subscribe", "--years", "1", "--json")
            assert code == 2 and "years" in err and "2 or 3 years" in err
            code, out, _ = await cli("hosting", "subscribe", "--years", "3", "--json")
            assert code == 0
            instances = json.loads(out)["instances"]
            assert all(set(i) >= INSTANCE_FIELDS for i in instances)
            assert [(i["year"], i["state"]) for i in instances] == [
                (1, "PENDING_APPLICATION"), (2, "NOT_ACTIVATED"), (3, "NOT_ACTIVATED")]  # fmt: skip
            first = instances[0]["id"]
            code, _, err = await cli("hosting", "apply", instances[1]["id"], "--domain", "a.example.com",
                                     "--company", "Co", "--contact-email", "ops@example.com")  # fmt: skip
            assert code == 2 and "PENDING_APPLICATION" in err
            code, _, err = await cli("hosting", "apply", first, "--domain", "bad..name", "--key-type", "dsa",
                                     "--company", "Co", "--contact-email", "ops@example.com")  # fmt: skip
            assert code == 2 and "key_type" in err and "domains[0]" in err
            names = [f"h{uuid.uuid4().hex[:8]}.example.com", f"w{uuid.uuid4().hex[:8]}.example.com"]
            code, out, _ = await cli("hosting", "apply", first, "--domain", names[0], "--domain", names[1],
                                     "--key-type", "ec256", "--validation", "http-01", "--company", "Example Co",
                                     "--contact-email", "ops@example.com", "--json")  # fmt: skip
            assert code == 0 and json.loads(out)["state"] == "APPLYING"

            async def hosted(previous: str | None = None) -> str | None:
                _, out, _ = await cli("hosting", "list", "--json")
                (row,) = [i for i in json.loads(out) if i["id"] == first]
                cert = row["certificate_id"]
                return cert if row["state"] == "HOSTED" and cert and cert != previous else None

            certificate_id = await wait_for(hosted, timeout=60)
            code, out, _ = await cli("hosting", "lifecycle", first, "--json")
            life = json.loads(out)
            assert [e["state"] for e in life["lifecycle"]] == ["PENDING_APPLICATION", "APPLYING", "HOSTED"]
            assert all(e["at"] and e["reason"] for e in life["lifecycle"])
            assert life["instance"]["next_renewal"]
            code, out, _ = await cli("certs", "list", "--json")
            (cert,) = json.loads(out)
            assert set(cert) >= CERT_FIELDS and cert["id"] == certificate_id and cert["instance_id"] == first
            assert sorted(cert["names"]) == sorted(names) and cert["issuer"]

            pem_file, pfx_file = tmp_path / "cert.pem", tmp_path / "cert.pfx"
            code, _, _ = await cli(
                "certs", "download", certificate_id, "--format", "pem", "-o", str(pem_file)
            )
            assert (
                code == 0 and b"PRIVATE KEY" in pem_file.read_bytes() and pem_file.stat().st_mode & 0o077 == 0
            )
            code, _, _ = await cli(
                "certs", "download", certificate_id, "--format", "pfx", "-o", str(pfx_file)
            )
            key, leaf, _cas = pkcs12.load_key_and_certificates(pfx_file.read_bytes(), None)
            assert (
                code == 0
                and key is not None
                and leaf is not None
                and format(leaf.serial_number, "x") == cert["serial"]
            )

            code, _, err = await cli("certs", "delete", certificate_id)
            assert code == 2 and "current certificate" in err
            code, out, _ = await cli("hosting", "renew", first, "--json")
            assert code == 0
            assert await wait_for(lambda: hosted(certificate_id), timeout=60)
            code, out, _ = await cli("certs", "delete", certificate_id, "--json")  # superseded now
            assert code == 0 and json.loads(out) == {"id": certificate_id, "deleted": True}

            # Another account sees none of it.
            _other, other_key = await new_account(
                settings.database_url, f"other-{uuid.uuid4().hex[:6]}", units=0
            )
            code, _, err = await cli("hosting", "lifecycle", first, key=other_key)
            assert code == 2 and "not found" in err
            code, _, err = await cli(
                "certs", "download", certificate_id, "-o", str(tmp_path / "x"), key=other_key
            )
            assert code == 2 and "not found" in err
            code, out, _ = await cli("certs", "list", "--json", key=other_key)
            assert json.loads(out) == []

            leaf_cert = p.leaf("up.example.com", key=make_key(slot="cli-upload"))
            cert_f, key_f, chain_f = tmp_path / "u.pem", tmp_path / "u.key", tmp_path / "chain.pem"
            cert_f.write_bytes(leaf_cert.pem)
            key_f.write_bytes(p.leaf("other.example.com", key=make_key(slot="cli-other")).key_pem)
            code, _, err = await cli("certs", "upload", "--cert", str(cert_f), "--key", str(key_f))
            assert code == 2 and "key: does not match" in err
            key_f.write_bytes(leaf_cert.key_pem)
            code, _, err = await cli("certs", "upload", "--cert", str(cert_f), "--key", str(key_f))
            assert (
                code == 2
                and "chain: its chain does not verify for up.example.com against the trust store" in err
            )
            chain_f.write_bytes(p.intermediate.pem)
            code, out, _ = await cli("certs", "upload", "--cert", str(cert_f), "--key", str(key_f),
                                     "--chain", str(chain_f), "--json")  # fmt: skip
            uploaded = json.loads(out)
            assert code == 0 and uploaded["instance_id"] is None and uploaded["names"] == ["up.example.com"]


@pytest.fixture
def pki() -> Iterator[TestPKI]:
    with TestPKI() as p:
        yield p


async def test_the_service_rotates_its_key_encryption_key_at_start(
    settings: Settings, capsys: pytest.CaptureFixture[str], tmp_path: Path, pki: TestPKI
) -> None:
    old, new = new_master_key(), new_master_key()
    p = pki
    settings = replace(settings, ca_file=p.ca_file)
    leaf = p.leaf("rotate.example.com", key=make_key(slot="cli-rotate"))
    (tmp_path / "c.pem").write_bytes(leaf.pem + p.intermediate.pem)
    (tmp_path / "k.pem").write_bytes(leaf.key_pem)

    async def cli(server: str, key: str, *argv: str) -> tuple[int, str, str]:
        code = await asyncio.to_thread(main, [*argv, "--api-key", key, "--server", server])
        captured = capsys.readouterr()
        return code, captured.out, captured.err

    async with running_stack(replace(settings, master_key=old), ("hosting",)) as stack:
        key, server = stack.api_key, f"127.0.0.1:{stack.services['hosting'].port}"
        code, out, _ = await cli(server, key, "certs", "upload", "--cert", str(tmp_path / "c.pem"),
                                 "--key", str(tmp_path / "k.pem"), "--json")  # fmt: skip
        certificate_id = json.loads(out)["id"]
    async with running_stack(replace(settings, master_key=new), ("hosting",)) as stack:
        server = f"127.0.0.1:{stack.services['hosting'].port}"
        code, _, err = await cli(
            server, key, "certs", "download", certificate_id, "-o", str(tmp_path / "x.pem")
        )
        assert code != 0 and "internal" in err.lower()  # the new key alone opens nothing wrapped by the old
    rotating = replace(settings, master_key=new, previous_master_keys=(parse_master_key(old),))
    async with running_stack(rotating, ("hosting",)):
        pass  # started once with both keys: the data keys are rewrapped
    async with running_stack(replace(settings, master_key=new), ("hosting",)) as stack:
        server = f"127.0.0.1:{stack.services['hosting'].port}"
        code, _, _ = await cli(
            server, key, "certs", "download", certificate_id, "-o", str(tmp_path / "y.pem")
        )
        assert code == 0 and leaf.key_pem in (tmp_path / "y.pem").read_bytes()
