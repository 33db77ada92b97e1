"""Which PEM bundle of trusted roots CERTWATCH_CA_FILE names: a file, `system` (the
operating system's bundle), or by default Mozilla's (certifi's). Shared by probes' chain
checks and certificate uploads, so both trust the same roots."""

from __future__ import annotations

import ssl
from pathlib import Path

import certifi

SYSTEM = "system"


def system_bundle() -> str:
    """The operating system's CA bundle (Debian: /etc/ssl/certs/ca-certificates.crt)."""
    paths = ssl.get_default_verify_paths()
    for candidate in (paths.cafile, paths.openssl_cafile, "/etc/ssl/certs/ca-certificates.crt"):
        if candidate and Path(candidate).is_file():
            return candidate
    raise FileNotFoundError("no system CA bundle found (install ca-certificates)")


def bundle_path(ca_file: str | None) -> str:
    return system_bundle() if ca_file == SYSTEM else ca_file or certifi.where()
