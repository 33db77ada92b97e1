"""How a probe behaves: timeouts, resolution overrides, trust roots and network policy."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from certwatch.prober.netpolicy import Network


@dataclass(frozen=True, slots=True)
class ProbeOptions:
    """Keyword-only knobs of ``probe``; the defaults suit monitoring public sites.

        ``resolve`` works like curl's ``--resolve``: ``{(host, port): [address, ...]}`` replaces
        DNS for that host and port. ``nameservers`` queries these (ip, port) servers directly
    instead of the system resolver. ``ca_file`` trusts only the roots in that PEM file instead
        of certifi's. ``allow_networks`` admits non-public addresses (see ``netpolicy``).
    """

    connect_timeout: float = 5.0
    handshake_timeout: float = 5.0
    overall: float = 15.0
    resolve: Mapping[tuple[str, int], Sequence[str]] = field(default_factory=dict)
    ca_file: str | None = None
    nameservers: Sequence[tuple[str, int]] = ()
    allow_networks: Sequence[Network] = ()
    check_ocsp: bool = True
    ocsp_timeout: float = 3.0
    max_addresses: int = 16
