"""The hosting orchestrator wired to a test pebble: an injected clock, the real http-01 responder
on pebble's validation port (sharing its answers through the pool), a fresh account."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from cryptography import x509
from psycopg_pool import AsyncConnectionPool

from certwatch.contracts.hosting import Validation
from certwatch.hosting.acme_client import CaConfig
from certwatch.hosting.challenges import Solvers
from certwatch.hosting.dns_providers import DnsProvider
from certwatch.hosting.http01 import Http01Responder
from certwatch.hosting.orchestrator import Orchestrator
from certwatch.hosting.use_cases import HostingUseCases
from certwatch.platform import auth
from certwatch.platform.eventlog import EventLog
from certwatch.platform.shredding import Vault, new_master_key, parse_master_key
from tests.support.pebble import Pebble

WAIT_ROUNDS = 40


@dataclass
class Clock:
    now: datetime = field(default_factory=lambda: datetime.now(UTC))

    def __call__(self) -> datetime:
        return self.now

    def advance(self, delta: timedelta) -> None:
        self.now += delta


@dataclass
class Hosting:
    use_cases: HostingUseCases
    orchestrator: Orchestrator
    responder: Http01Responder
    clock: Clock
    account_id: str
    vault: Vault

    async def settle(self, rounds: int = WAIT_ROUNDS) -> None:
        """Run due work until nothing is due now (bounded)."""
        for _ in range(rounds):
            if await self.orchestrator.run_due() == 0:
                return
        raise AssertionError(f"instances still due after {rounds} rounds")


class Silent:
    """A solver that answers nothing: every challenge fails."""

    def present(self, method: Validation, domain: str, key: str, value: str) -> None:
        pass

    def cleanup(self, method: Validation, domain: str, key: str, value: str) -> None:
        pass


async def hosting(
    pool: AsyncConnectionPool[Any], event_log: EventLog, ca: Pebble, directory: str | None = None,
    master_key: str | None = None, dns_provider: DnsProvider | None = None,
) -> AsyncIterator[Hosting]:  # fmt: skip
    clock = Clock()
    vault = Vault(parse_master_key(master_key or new_master_key()))
    account, _key = await auth.create_account(pool, f"hosting-{uuid.uuid4().hex[:8]}")
    responder = Http01Responder(pool, "127.0.0.1", ca.http_port)
    await responder.start()
    config = CaConfig(directory or ca.directory, ca.ca_file)
    orchestrator = Orchestrator(event_log, vault, config, Solvers(responder, dns_provider), clock=clock)
    try:
        yield Hosting(HostingUseCases(event_log, vault, clock=clock), orchestrator, responder, clock,
                      str(account), vault)  # fmt: skip
    finally:
        await responder.close()


def verify_chain(cert_pem: str, chain_pem: str, root_pem: bytes) -> x509.Certificate:
    """The leaf, after checking each certificate is signed by the next and the last by `root_pem`."""
    certs = x509.load_pem_x509_certificates((cert_pem + chain_pem).encode())
    root = x509.load_pem_x509_certificate(root_pem)
    for child, parent in zip(certs, [*certs[1:], root], strict=True):
        child.verify_directly_issued_by(parent)
    return certs[0]
