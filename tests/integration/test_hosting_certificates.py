"""Uploaded certificates (key must match, chain ordered and verified), downloads as PEM and
PKCS#12 for the account's own certificates only, and rotation of the key-encryption key."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from cryptography.hazmat.primitives.serialization import pkcs12
from psycopg_pool import AsyncConnectionPool

from certwatch.contracts import hosting as hc
from certwatch.hosting.acme_client import CaConfig
from certwatch.hosting.orchestrator import Orchestrator, key_subject
from certwatch.hosting.use_cases import HostingUseCases
from certwatch.platform import auth
from certwatch.platform.errors import InvalidArgument, NotFound
from certwatch.platform.eventlog import EventLog
from certwatch.platform.shredding import MasterKeyError, Shredded, Vault, new_master_key, parse_master_key
from tests.support.hosting import Clock, Silent
from tests.support.pki import TestPKI, make_key


async def _account(pool: AsyncConnectionPool[Any]) -> str:
    account, _key = await auth.create_account(pool, f"certs-{uuid.uuid4().hex[:8]}")
    return str(account)


@pytest.fixture
def kek() -> bytes:
    return parse_master_key(new_master_key())


async def test_upload_checks_key_and_chain_then_downloads(
    pool: AsyncConnectionPool[Any], event_log: EventLog, kek: bytes
) -> None:
    account = await _account(pool)
    with TestPKI() as p:
        uc = HostingUseCases(event_log, Vault(kek), ca_file=p.ca_file)
        leaf = p.leaf("shop.example.com", key=make_key(slot="upload-leaf"))
        other = make_key(slot="upload-other")
        foreign = TestPKI(label="Foreign")
        with pytest.raises(InvalidArgument) as wrong_key:
            await uc.upload(
                account, leaf.pem, p.leaf("x.example.com", key=other).key_pem, p.intermediate.pem, "t"
            )
        assert wrong_key.value.violations[0][0] == "key"
        assert "does not match" in wrong_key.value.violations[0][1]
        with pytest.raises(InvalidArgument) as foreign_chain:
            await uc.upload(account, leaf.pem, leaf.key_pem, foreign.intermediate.pem, "t")
        assert foreign_chain.value.violations[0][0] == "chain"
        assert (
            "its chain does not verify for shop.example.com against the trust store"
            in foreign_chain.value.violations[0][1]
        )
        # A chain that is complete and signed, but ends at a root the trust store lacks.
        with pytest.raises(InvalidArgument) as untrusted:
            await HostingUseCases(event_log, Vault(kek), ca_file=foreign.ca_file).upload(
                account, leaf.pem, leaf.key_pem, p.intermediate.pem + p.root.pem, "t"
            )
        assert (
            untrusted.value.violations[0][0] == "chain" and "trust store" in untrusted.value.violations[0][1]
        )
        foreign.close()
        now = datetime.now(UTC)
        expired = p.leaf(
            "old.example.com", not_before=now - timedelta(days=30), not_after=now - timedelta(days=1)
        )
        with pytest.raises(InvalidArgument) as too_old:
            await uc.upload(account, expired.pem, expired.key_pem, p.intermediate.pem, "t")
        assert too_old.value.violations == [
            ("cert", f"expired on {expired.cert.not_valid_after_utc.isoformat()}")
        ]
        with pytest.raises(InvalidArgument) as not_pem:
            await uc.upload(account, b"hello", leaf.key_pem, b"", "t")
        assert not_pem.value.violations[0][0] == "cert"

        # Misordered (root first) and with the root: kept in issuance order, without the anchor.
        row = await uc.upload(account, leaf.pem, leaf.key_pem, p.root.pem + p.intermediate.pem, "t")
        assert (
            row.uploaded
            and row.names == ["shop.example.com"]
            and row.not_after == leaf.cert.not_valid_after_utc
        )
        assert [c.id for c in await uc.certificates(account)] == [row.id]
        _, pem = await uc.download(account, row.id, "pem", "")
        assert pem.startswith(leaf.pem) and b"PRIVATE KEY" in pem
        _, pfx = await uc.download(account, row.id, "pfx", "s3cret")
        key, cert, cas = pkcs12.load_key_and_certificates(pfx, b"s3cret")
        assert cert is not None and cert.serial_number == leaf.cert.serial_number
        assert key is not None and [c.subject for c in cas] == [p.intermediate.cert.subject]
        # Another account's id looks like no id at all.
        with pytest.raises(NotFound):
            await uc.download(await _account(pool), row.id, "pem", "")
        # The event carries the key sealed only.
        (event,) = await event_log.read_stream(hc.cert_stream_id(row.id))
        key_line = leaf.key_pem.decode().splitlines()[1]
        assert key_line not in str(event.data) and event.data["sealed_key"].startswith("v1:")

        # Deleting destroys the key: the sealed copy in the event can no longer be opened.
        await uc.delete_certificate(account, row.id, "t")
        assert await uc.certificates(account) == []
        with pytest.raises(NotFound):
            await uc.download(account, row.id, "pem", "")
        vault = Vault(kek)
        async with pool.connection() as conn:
            with pytest.raises(Shredded):
                await vault.open(conn, key_subject(row.id), event.data["sealed_key"])
        events = await event_log.read_stream(hc.cert_stream_id(row.id))
        assert [e.type for e in events] == [hc.CertificateUploaded.TYPE, hc.CertificateDeleted.TYPE]


async def test_rotating_the_key_encryption_key(
    pool: AsyncConnectionPool[Any], event_log: EventLog, kek: bytes
) -> None:
    account = await _account(pool)
    with TestPKI() as p:
        leaf = p.leaf("rotate.example.com")
        row = await HostingUseCases(event_log, Vault(kek), ca_file=p.ca_file).upload(
            account, leaf.pem, leaf.key_pem, p.intermediate.pem, "t"
        )
    new = parse_master_key(new_master_key())
    with pytest.raises(MasterKeyError):
        await HostingUseCases(event_log, Vault(new)).download(account, row.id, "pem", "")
    rotating = Vault(new, previous=[kek])
    _, before = await HostingUseCases(event_log, rotating).download(account, row.id, "pem", "")
    async with pool.connection() as conn, conn.transaction():
        assert await rotating.rotate(conn, prefix="hosting-") >= 1
        assert await rotating.rotate(conn, prefix="hosting-") == 0
    _, after = await HostingUseCases(event_log, Vault(new)).download(account, row.id, "pem", "")
    assert after == before and leaf.key_pem in after
    with pytest.raises(MasterKeyError):
        await HostingUseCases(event_log, Vault(kek)).download(account, row.id, "pem", "")
    async with pool.connection() as conn:
        cur = await conn.execute(
            "SELECT count(*) FROM subject_keys WHERE subject = %s", (key_subject(row.id),)
        )
        assert (await cur.fetchone()) == (1,)


async def test_uploads_about_to_expire_are_announced_once(
    pool: AsyncConnectionPool[Any], event_log: EventLog, kek: bytes
) -> None:
    clock = Clock()
    orchestrator = Orchestrator(
        event_log, Vault(kek), CaConfig("http://127.0.0.1:9/dir"), Silent(), clock=clock
    )
    account = await _account(pool)
    with TestPKI() as p:
        uc = HostingUseCases(event_log, Vault(kek), clock=clock, ca_file=p.ca_file)
        soon = p.leaf("soon.example.com", not_after=clock.now + timedelta(days=20))
        later = p.leaf("later.example.com", not_after=clock.now + timedelta(days=45))
        first = await uc.upload(account, soon.pem, soon.key_pem, p.intermediate.pem, "t")
        second = await uc.upload(account, later.pem, later.key_pem, p.intermediate.pem, "t")
    assert await orchestrator.announce_expiring_uploads() == 1
    assert await orchestrator.announce_expiring_uploads() == 0
    clock.advance(timedelta(days=16))
    assert await orchestrator.run_due() == 0 and await orchestrator.announce_expiring_uploads() == 0
    for row in (first, second):
        events = await event_log.read_stream(hc.cert_stream_id(row.id))
        expiring = [hc.UploadedCertificateExpiring.of(e) for e in events if e.type == hc.UPLOAD_EXPIRING]
        assert (
            len(expiring) == 1 and expiring[0].not_after == row.not_after and expiring[0].names == row.names
        )
