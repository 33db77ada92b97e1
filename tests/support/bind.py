"""Debian's BIND 9 (`named`) as a real RFC 2136 server: one primary zone that takes TSIG-signed
TXT updates, on a free loopback port, in the foreground, bounded start and stop."""

from __future__ import annotations

import base64
import contextlib
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import dns.message
import dns.query
import dns.rdatatype

from certwatch.platform.localstack import free_port
from tests.support.nginx import stop

NAMED = "/usr/sbin/named"
START_TIMEOUT_S = 20.0
KEY_NAME = "certwatch-test."


@dataclass(frozen=True)
class Bind:
    port: int
    zone: str
    tsig: str  # NAME:SECRET:ALGORITHM, as CERTWATCH_ACME_RFC2136_TSIG takes it

    def txt(self, name: str) -> list[str]:
        query = dns.message.make_query(name, dns.rdatatype.TXT)
        answer = dns.query.udp(query, "127.0.0.1", port=self.port, timeout=2)
        return [b"".join(r.strings).decode() for rrset in answer.answer for r in rrset]


def _conf(tmp: Path, port: int, zone: str, secret: str) -> str:
    return f"""
options {{
    directory "{tmp}";
    pid-file "{tmp}/named.pid";
    session-keyfile "{tmp}/session.key";
    managed-keys-directory "{tmp}";
    listen-on port {port} {{ 127.0.0.1; }};
    listen-on-v6 {{ none; }};
    recursion no;
    allow-query {{ any; }};
    dnssec-validation no;
    notify no;
}};
controls {{ }};
key "{KEY_NAME}" {{ algorithm hmac-sha256; secret "{secret}"; }};
zone "{zone}" {{
    type primary;
    file "{tmp}/{zone}.zone";
    update-policy {{ grant {KEY_NAME} zonesub TXT; }};
}};
"""


def _ready(port: int, zone: str, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"named exited with {proc.returncode}")
        with contextlib.suppress(OSError, dns.exception.DNSException):
            answer = dns.query.udp(
                dns.message.make_query(zone, dns.rdatatype.SOA), "127.0.0.1", port=port, timeout=0.5
            )
            if answer.answer:
                return
        time.sleep(0.1)
    raise RuntimeError(f"named did not serve {zone} within {START_TIMEOUT_S:.0f}s")


@contextlib.contextmanager
def bind(zone: str = "example.net") -> Iterator[Bind]:
    if not os.access(NAMED, os.X_OK):
        import pytest

        pytest.skip("bind9 is not installed (make deps)")
    tmp = Path(tempfile.mkdtemp(prefix="certwatch-bind-"))
    secret = base64.b64encode(os.urandom(32)).decode()
    port = free_port()
    (tmp / f"{zone}.zone").write_text(
        f"$TTL 60\n@ IN SOA ns.{zone}. hostmaster.{zone}. 1 60 60 600 60\n@ IN NS ns.{zone}.\n"
        f"ns IN A 127.0.0.1\n* IN A 127.0.0.1\n@ IN A 127.0.0.1\n"
    )
    (tmp / "named.conf").write_text(_conf(tmp, port, zone, secret))
    with (tmp / "named.log").open("wb") as log:
        proc = subprocess.Popen(
            [NAMED, "-g", "-c", str(tmp / "named.conf")], stdout=log, stderr=subprocess.STDOUT
        )
        try:
            _ready(port, zone, proc)
            yield Bind(port, zone, f"{KEY_NAME}:{secret}:hmac-sha256")
        finally:
            stop(proc)
            shutil.rmtree(tmp, ignore_errors=True)
