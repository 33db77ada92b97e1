"""Probes fed to the classifier as the prober publishes them, minus JetStream: the
certificates stored as the prober stores them, then a `ProbeObserved` handed to the
classifier's observation handler (`VerdictWriter`), the code the consumer runs."""

from __future__ import annotations

import uuid

from certwatch.classifier.verdicts import VerdictWriter
from certwatch.contracts.probe import ObservedResult, ProbeObserved
from certwatch.platform import certificates
from certwatch.platform.eventlog import EventLog
from certwatch.platform.observation_stream import Incoming
from certwatch.prober.chain_refs import by_reference
from certwatch.rules.facts import ProbeResult


async def observation(
    event_log: EventLog, *, domain_id: str, account_id: str, result: ProbeResult, generation: int = 1,
    first_check: bool = False, traceparent: str | None = None,
) -> Incoming:  # fmt: skip
    """The message the prober would publish for this probe (its certificates stored)."""
    refs = by_reference(result)
    chains, certs = refs.unstored(frozenset())
    async with event_log.pool.connection() as conn, conn.transaction():
        await certificates.put_certificates(conn, certs)
        await certificates.put_chains(conn, chains)
    probe = ProbeObserved(
        observation_id=str(uuid.uuid4()), domain_id=domain_id, account_id=account_id, host=result.host,
        port=result.port, generation=generation, first_check=first_check, result=ObservedResult.of(result),
        prober="test", traceparent=traceparent,
    )  # fmt: skip
    return Incoming(probe.observation_id, probe.encode(), 1)


async def observe(event_log: EventLog, writer: VerdictWriter | None = None, **probe: object) -> Incoming:
    """Publish-and-classify one probe; returns the message (to redeliver it)."""
    message = await observation(event_log, **probe)  # type: ignore[arg-type]
    await (writer or VerdictWriter(event_log))([message])
    return message
