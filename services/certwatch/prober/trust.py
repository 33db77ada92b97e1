"""Trust anchors: certifi's roots, or only the roots of a given CA file.

Loading and indexing a root store costs milliseconds, so each store is built once per
process (per CA file path) and shared by every probe.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from cryptography.utils import CryptographyDeprecationWarning
from cryptography.x509.verification import Store

from certwatch.platform.trust_bundle import bundle_path


def _identity(cert: x509.Certificate) -> tuple[bytes, bytes]:
    key = cert.public_key().public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)
    return (cert.subject.public_bytes(), key)


@dataclass(frozen=True, slots=True, eq=False)  # identity hash: used as a cache key
class TrustAnchors:
    """A verifier store plus the indexes our own path building needs."""

    source: str
    store: Store
    by_subject: Mapping[x509.Name, tuple[x509.Certificate, ...]]
    identities: frozenset[tuple[bytes, bytes]]

    def is_anchor(self, cert: x509.Certificate) -> bool:
        """Same subject and key as a trusted root (a re-issued root still counts)."""
        return _identity(cert) in self.identities


@lru_cache(maxsize=16)
def load_anchors(ca_file: str | None = None) -> TrustAnchors:
    """Roots from ``ca_file`` (PEM) when given, the system's bundle for ``"system"``, else
    Mozilla's (certifi's) bundle."""
    path = bundle_path(ca_file)
    with warnings.catch_warnings():
        # OS bundles still carry a few old roots with non-positive serials; we trust the
        # bundle as its maintainers ship it rather than warn on every start.
        warnings.simplefilter("ignore", CryptographyDeprecationWarning)
        roots = x509.load_pem_x509_certificates(Path(path).read_bytes())
    by_subject: dict[x509.Name, list[x509.Certificate]] = {}
    for root in roots:
        by_subject.setdefault(root.subject, []).append(root)
    return TrustAnchors(
        source=path,
        store=Store(roots),
        by_subject={name: tuple(certs) for name, certs in by_subject.items()},
        identities=frozenset(_identity(root) for root in roots),
    )
