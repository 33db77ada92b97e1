"""What a domain serves (addresses and chains) and how it changed since the last probe.

Pure. The processor keeps the last `Observation` per domain and compares each new probe
with it, so a chain is recorded once when it appears and ownership changes are detected
without re-reading history. A fact a probe could not see is unknown, not changed: a failed
DNS lookup keeps the previous addresses, and an address whose handshake failed keeps the
chain it served before. Otherwise every outage would read as a change of owner.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from certwatch.rules.facts import CertFacts, ProbeResult

Chain = tuple[str, ...]  # SHA-256 fingerprints, leaf first, as presented


class ChangeKind(StrEnum):
    ADDRESSES = "ADDRESSES"  # the set of resolved IPs
    SUBJECT = "SUBJECT"  # the leaf's subject
    ISSUER = "ISSUER"  # the leaf's issuer
    PUBLIC_KEY = "PUBLIC_KEY"  # the leaf's key
    CHAIN = "CHAIN"  # the issuing certificates served above the leaf
    RENEWAL = "RENEWAL"  # a new leaf with the same subject, issuer and key


@dataclass(frozen=True, slots=True)
class CertIdentity:
    """The parts of a certificate that say who controls the site."""

    subject: str
    issuer: str
    public_key_sha256: str | None  # None in probes recorded before keys were fingerprinted

    @classmethod
    def of(cls, cert: CertFacts) -> CertIdentity:
        return cls(cert.subject, cert.issuer, cert.public_key_sha256)


@dataclass(frozen=True, slots=True)
class Observation:
    addresses: tuple[str, ...]  # sorted
    serving: Mapping[str, Chain]  # address -> chain, for addresses whose chain is known
    certs: Mapping[str, CertIdentity]  # fingerprint -> identity, for every served certificate

    def chains(self) -> set[Chain]:
        return set(self.serving.values())

    def to_dict(self) -> dict[str, Any]:
        return {
            "addresses": list(self.addresses),
            "serving": {ip: list(chain) for ip, chain in self.serving.items()},
            "certs": {
                fp: {
                    "subject": c.subject,
                    "issuer": c.issuer,
                    "public_key_sha256": c.public_key_sha256,
                }
                for fp, c in self.certs.items()
            },
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Observation:
        return cls(
            addresses=tuple(data["addresses"]),
            serving={ip: tuple(chain) for ip, chain in data["serving"].items()},
            certs={
                fp: CertIdentity(c["subject"], c["issuer"], c.get("public_key_sha256"))
                for fp, c in data["certs"].items()
            },
        )


@dataclass(frozen=True, slots=True)
class Change:
    kind: ChangeKind
    before: tuple[str, ...]
    after: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind.value, "before": list(self.before), "after": list(self.after)}


def observe(result: ProbeResult, previous: Observation | None) -> Observation | None:
    """The domain's state after `result`; `previous` fills in what this probe could not see."""
    if not result.addresses:
        return previous
    addresses = tuple(sorted(set(result.addresses)))
    seen = {e.ip: e.chain for e in result.endpoints if e.chain}
    serving: dict[str, Chain] = {}
    certs: dict[str, CertIdentity] = {}
    for ip in addresses:
        if ip in seen:
            serving[ip] = tuple(c.sha256 for c in seen[ip])
            certs.update((c.sha256, CertIdentity.of(c)) for c in seen[ip])
        elif previous is not None and ip in previous.serving:
            serving[ip] = previous.serving[ip]
            certs.update((fp, previous.certs[fp]) for fp in serving[ip])
    return Observation(addresses, serving, certs)


def new_certificates(previous: Observation | None, current: Observation) -> set[str]:
    """Fingerprints served now that the previous observation did not serve."""
    return set(current.certs) - (set(previous.certs) if previous else set())


def _values(items: Iterable[str | None]) -> tuple[str, ...]:
    return tuple(sorted({i for i in items if i is not None}))


def _leaf_changes(previous: Observation, current: Observation) -> list[Change]:
    before_leaves = {chain[0] for chain in previous.chains()}
    after_leaves = {chain[0] for chain in current.chains()}
    if not before_leaves or not after_leaves or before_leaves == after_leaves:
        return []
    before = [previous.certs[fp] for fp in before_leaves]
    after = [current.certs[fp] for fp in after_leaves]
    found = []
    for kind, attr in (
        (ChangeKind.SUBJECT, "subject"),
        (ChangeKind.ISSUER, "issuer"),
        (ChangeKind.PUBLIC_KEY, "public_key_sha256"),
    ):
        old = [getattr(c, attr) for c in before]
        new = [getattr(c, attr) for c in after]
        if None in old or None in new:  # a key fingerprint missing from old results is unknown
            continue
        if set(old) != set(new):
            found.append(Change(kind, _values(old), _values(new)))
    if not found:
        found.append(Change(ChangeKind.RENEWAL, _values(before_leaves), _values(after_leaves)))
    return found


def _issuing_chains(observation: Observation) -> set[str]:
    return {
        " > ".join(f"{observation.certs[fp].subject} [{fp}]" for fp in chain[1:]) or "(leaf only)"
        for chain in observation.chains()
    }


def changes(previous: Observation | None, current: Observation) -> list[Change]:
    """Every difference that the report's "Domain Name Update" lists; none for a first look."""
    if previous is None:
        return []
    found: list[Change] = []
    if set(previous.addresses) != set(current.addresses):
        found.append(Change(ChangeKind.ADDRESSES, previous.addresses, current.addresses))
    found.extend(_leaf_changes(previous, current))
    if previous.serving and current.serving:
        before, after = _issuing_chains(previous), _issuing_chains(current)
        if before != after:
            found.append(Change(ChangeKind.CHAIN, _values(before), _values(after)))
    return found
