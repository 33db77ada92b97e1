"""Debian's pebble (an ACME test CA) on loopback, for `make run`: hosted certificates are
really ordered, validated and issued on one machine.

pebble validates http-01 by resolving each name through pebble-challtestsrv's DNS, which
answers 127.0.0.1 for every name, and fetching the token from its `httpPort`: the address
the ACME client's http-01 responder listens on (CERTWATCH_ACME_HTTP01_ADDR). pebble's own TLS
listener gets a certificate from a small CA generated once under `var/pebble/` (the file
the ACME client trusts as CERTWATCH_ACME_CA_FILE). pebble keeps orders in memory and issues from a
new root each start: local certificates are for trying certwatch, not for serving.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import json
import os
import shutil
import ssl
import subprocess
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

PEBBLE = "/usr/bin/pebble"
CHALLTESTSRV = "/usr/bin/pebble-challtestsrv"


def available() -> bool:
    return bool(shutil.which(PEBBLE) and shutil.which(CHALLTESTSRV))


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def _pem_key(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def write_tls(directory: Path, now: dt.datetime | None = None) -> None:
    """A root (`ca.pem`) and a 127.0.0.1/localhost certificate for pebble's listener
    (`cert.pem`, `key.pem`), made once: the root stays what the ACME client trusts."""
    if all((directory / f).exists() for f in ("ca.pem", "cert.pem", "key.pem")):
        return
    directory.mkdir(parents=True, exist_ok=True)
    start = (now or dt.datetime.now(dt.UTC)) - dt.timedelta(hours=1)
    root_key, leaf_key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    root = (
        x509.CertificateBuilder().subject_name(_name("certwatch local ACME TLS root"))
        .issuer_name(_name("certwatch local ACME TLS root")).public_key(root_key.public_key())
        .serial_number(x509.random_serial_number()).not_valid_before(start)
        .not_valid_after(start + dt.timedelta(days=3650))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                       content_commitment=False, key_encipherment=False, data_encipherment=False,
                       key_agreement=False, encipher_only=False, decipher_only=False), critical=True)
        .sign(root_key, hashes.SHA256())
    )  # fmt: skip
    leaf = (
        x509.CertificateBuilder().subject_name(_name("localhost")).issuer_name(root.subject)
        .public_key(leaf_key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(start).not_valid_after(start + dt.timedelta(days=3650))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost"),
                       x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
        .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .sign(root_key, hashes.SHA256())
    )  # fmt: skip
    pem = serialization.Encoding.PEM
    (directory / "key.pem").write_bytes(_pem_key(leaf_key))
    os.chmod(directory / "key.pem", 0o600)
    (directory / "cert.pem").write_bytes(leaf.public_bytes(pem) + root.public_bytes(pem))
    (directory / "ca.pem").write_bytes(root.public_bytes(pem))


@dataclass(frozen=True)
class LocalAcme:
    """Where pebble and pebble-challtestsrv listen (all on 127.0.0.1) and keep their files."""

    directory_path: Path
    port: int  # the ACME directory
    management_port: int
    http01_port: int  # where pebble fetches http-01 tokens: the responder's port
    dns_port: int  # pebble-challtestsrv's DNS, pebble's resolver
    challtest_port: int  # pebble-challtestsrv's management API

    @property
    def directory(self) -> str:
        return f"https://127.0.0.1:{self.port}/dir"

    @property
    def ca_file(self) -> str:
        return str(self.directory_path / "ca.pem")

    def pebble_argv(self) -> list[str]:
        write_tls(self.directory_path)
        config = {"pebble": {
            "listenAddress": f"127.0.0.1:{self.port}", "managementListenAddress": f"127.0.0.1:{self.management_port}",
            "certificate": str(self.directory_path / "cert.pem"), "privateKey": str(self.directory_path / "key.pem"),
            # tlsPort is where tls-alpn-01 would be validated: no client here answers that one.
            "httpPort": self.http01_port, "tlsPort": self.http01_port, "ocspResponderURL": "",
            "externalAccountBindingRequired": False,
        }}  # fmt: skip
        path = self.directory_path / "pebble.json"
        path.write_text(json.dumps(config, indent=2))
        return [PEBBLE, "-config", str(path), "-dnsserver", f"127.0.0.1:{self.dns_port}"]

    def challtestsrv_argv(self) -> list[str]:
        return [CHALLTESTSRV, "-dns01", f"127.0.0.1:{self.dns_port}", "-http01", "", "-https01", "",
                "-tlsalpn01", "", "-management", f"127.0.0.1:{self.challtest_port}",
                "-defaultIPv4", "127.0.0.1", "-defaultIPv6", ""]  # fmt: skip

    @staticmethod
    def env() -> dict[str, str]:
        """pebble's environment: validate at once (it waits up to 15 s by default)."""
        return {**os.environ, "PEBBLE_VA_NOSLEEP": "1"}

    def issuing_root(self, timeout_s: float = 2.0) -> bytes:
        """The root this run of pebble issues from (a new one each start)."""
        context = ssl.create_default_context(cafile=self.ca_file)
        url = f"https://127.0.0.1:{self.management_port}/roots/0"
        with urllib.request.urlopen(url, context=context, timeout=timeout_s) as resp:
            body: bytes = resp.read()
            return body


def spawn(argv: list[str], env: dict[str, str], output: int) -> subprocess.Popen[bytes]:
    from certwatch.platform.localstack import die_with_parent

    return subprocess.Popen(
        argv, env=env, stdout=output, stderr=output, start_new_session=True, preexec_fn=die_with_parent
    )
