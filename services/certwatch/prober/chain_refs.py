"""Chains by reference: a published probe result names each chain by its fingerprints.

The certificates themselves go to the platform's content-addressed store
(`platform.certificates`) in the prober's own transaction, before the observation is
published, and only when the domain's previous probe did not already store that chain
(`Due.reported_chains`). So a stable domain costs no certificate write per probe, and an
observation lost on the stream never leaves a later one unreadable: whatever it references
is already stored.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from certwatch.platform.certificates import StoredCertificate
from certwatch.rules.facts import CertFacts, ProbeResult


def chain_key(fingerprints: list[str] | tuple[str, ...]) -> str:
    return ",".join(fingerprints)


@dataclass(frozen=True, slots=True)
class ByReference:
    chains: dict[str, tuple[str, ...]]  # chain_key -> fingerprints, leaf first
    certificates: dict[str, CertFacts]  # fingerprint -> facts

    def unstored(
        self, reported: frozenset[str], der_of: Callable[[str], bytes | None] = lambda _: None
    ) -> tuple[list[tuple[str, ...]], list[StoredCertificate]]:
        """The chains, and their certificates (with their DER where `der_of` knows it), that
        the domain's last probe did not store. Only those certificates' facts are put in
        their JSON form: a stable domain's probe formats none (every probe's whole result
        used to be, for its fingerprints: a twentieth of the prober's CPU)."""
        chains = [fps for key, fps in self.chains.items() if key not in reported]
        fresh = {fp for fps in chains for fp in fps}
        return chains, [
            StoredCertificate(fp, self.certificates[fp].to_dict(), der_of(fp)) for fp in sorted(fresh)
        ]


def by_reference(result: ProbeResult) -> ByReference:
    """The chains `result` was presented, by fingerprint."""
    chains: dict[str, tuple[str, ...]] = {}
    certificates: dict[str, CertFacts] = {}
    for endpoint in result.endpoints:
        if not endpoint.chain:
            continue
        fingerprints = tuple(cert.sha256 for cert in endpoint.chain)
        chains[chain_key(fingerprints)] = fingerprints
        certificates.update((cert.sha256, cert) for cert in endpoint.chain)
    return ByReference(chains, certificates)
