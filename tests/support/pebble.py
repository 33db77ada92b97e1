"""Debian's pebble (ACME test CA) and pebble-challtestsrv on loopback, bounded context managers.

``pebble(...)`` generates a loopback TLS certificate for pebble's own listener (the file a
client trusts as ``CERTWATCH_ACME_CA_FILE``), picks free ports, starts pebble with
``PEBBLE_VA_NOSLEEP=1`` and ``PEBBLE_AUTHZREUSE=0`` (deterministic validations), and fetches
the issuing root from the management interface (it changes on every start). http-01 is
validated on ``127.0.0.1:<http_port>`` (every name resolves to 127.0.0.1 through
pebble-challtestsrv's DNS, started alongside with every listener on 127.0.0.1), so the
responder under test binds that port. Without pebble installed the caller is skipped.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import ssl
import subprocess
import tempfile
import time
import urllib.request
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

from certwatch.platform.localstack import free_port
from tests.support import pki
from tests.support.nginx import stop, wait_port

PEBBLE = "/usr/bin/pebble"
CHALLTESTSRV = "/usr/bin/pebble-challtestsrv"
START_TIMEOUT_S = 20.0


@dataclass(frozen=True)
class Pebble:
    directory: str  # https://127.0.0.1:<port>/dir
    ca_file: str  # trust for pebble's own TLS listener
    management: str  # https://127.0.0.1:<port>
    http_port: int  # where pebble validates http-01
    dns_port: int  # pebble-challtestsrv's DNS (UDP), pebble's resolver
    challtestsrv: str  # http://127.0.0.1:<port>, its management API
    root_pem: bytes  # the issuing root of this run

    def context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=self.ca_file)

    def get(self, url: str) -> bytes:
        with urllib.request.urlopen(url, context=self.context(), timeout=5) as resp:
            body: bytes = resp.read()
            return body

    def challtest(self, path: str, body: Mapping[str, object]) -> None:
        """POST to pebble-challtestsrv's management API (``/set-txt``, ``/add-a``, ...)."""
        request = urllib.request.Request(
            self.challtestsrv + path, data=json.dumps(body).encode(), method="POST"
        )
        with urllib.request.urlopen(request, timeout=5) as resp:
            resp.read()


def _write_tls(directory: Path) -> str:
    root = pki.issue(
        "certwatch pebble TLS Root", ca=True, org="certwatch pebble", key=pki.make_key(slot="pebble-root")
    )
    leaf = pki.issue("localhost", issuer=root, dns=("localhost",), ips=("127.0.0.1",))
    (directory / "cert.pem").write_bytes(leaf.pem + root.pem)
    (directory / "key.pem").write_bytes(leaf.key_pem)
    (directory / "ca.pem").write_bytes(root.pem)
    return str(directory / "ca.pem")


def _fetch_root(management: str, ca_file: str, proc: subprocess.Popen[bytes]) -> bytes:
    context = ssl.create_default_context(cafile=ca_file)
    deadline = time.monotonic() + START_TIMEOUT_S
    last: Exception | None = None
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"pebble exited with {proc.returncode}")
        try:
            with urllib.request.urlopen(f"{management}/roots/0", context=context, timeout=2) as resp:
                body: bytes = resp.read()
                return body
        except OSError as exc:
            last = exc
            time.sleep(0.1)
    raise RuntimeError(f"pebble's root was not served within {START_TIMEOUT_S:.0f}s: {last}")


@contextlib.contextmanager
def pebble(
    *,
    validity_s: int | None = None,
    nonce_reject_percent: int | None = None,
    env: Mapping[str, str] | None = None,
    dns_server: str | None = None,
    eab_keys: Mapping[str, str] | None = None,
) -> Iterator[Pebble]:
    """pebble + pebble-challtestsrv. ``validity_s``: ``certificateValidityPeriod`` (default: five
    years); ``nonce_reject_percent``: ``PEBBLE_WFE_NONCEREJECT`` (pebble's default is 5);
    ``dns_server``: HOST:PORT pebble resolves with instead of pebble-challtestsrv;
    ``eab_keys``: kid -> base64url HMAC key, and External Account Binding required."""
    if not (shutil.which(PEBBLE) and shutil.which(CHALLTESTSRV)):
        import pytest

        pytest.skip("pebble is not installed (make deps)")
    tmp = Path(tempfile.mkdtemp(prefix="certwatch-pebble-"))
    procs: list[subprocess.Popen[bytes]] = []
    logs = contextlib.ExitStack()
    try:
        ca_file = _write_tls(tmp)
        dns, chall_mgmt = free_port(), free_port()
        chall = subprocess.Popen(
            [CHALLTESTSRV, "-dns01", f"127.0.0.1:{dns}", "-http01", "", "-https01", "", "-tlsalpn01", "",
             "-management", f"127.0.0.1:{chall_mgmt}", "-defaultIPv6", ""],
            stdout=subprocess.DEVNULL, stderr=logs.enter_context((tmp / "challtestsrv.log").open("wb")),
        )  # fmt: skip
        procs.append(chall)
        wait_port(chall_mgmt, chall, "pebble-challtestsrv", START_TIMEOUT_S)
        listen, mgmt, http_port, tls_port = free_port(), free_port(), free_port(), free_port()
        config: dict[str, object] = {
            "listenAddress": f"127.0.0.1:{listen}",
            "managementListenAddress": f"127.0.0.1:{mgmt}",
            "certificate": str(tmp / "cert.pem"),
            "privateKey": str(tmp / "key.pem"),
            "httpPort": http_port,
            "tlsPort": tls_port,
            "ocspResponderURL": "",
            "externalAccountBindingRequired": bool(eab_keys),
        }
        if eab_keys:
            config["externalAccountMACKeys"] = dict(eab_keys)
        if validity_s is not None:
            config["certificateValidityPeriod"] = validity_s
        (tmp / "pebble.json").write_text(json.dumps({"pebble": config}))
        penv = {**os.environ, "PEBBLE_VA_NOSLEEP": "1", "PEBBLE_AUTHZREUSE": "0", **(env or {})}
        if nonce_reject_percent is not None:
            penv["PEBBLE_WFE_NONCEREJECT"] = str(nonce_reject_percent)
        proc = subprocess.Popen(
            [PEBBLE, "-config", str(tmp / "pebble.json"), "-dnsserver", dns_server or f"127.0.0.1:{dns}"],
            stdout=logs.enter_context((tmp / "pebble.log").open("wb")), stderr=subprocess.STDOUT, env=penv,
        )  # fmt: skip
        procs.append(proc)
        wait_port(listen, proc, "pebble", START_TIMEOUT_S)
        management = f"https://127.0.0.1:{mgmt}"
        root = _fetch_root(management, ca_file, proc)
        yield Pebble(
            directory=f"https://127.0.0.1:{listen}/dir", ca_file=ca_file, management=management,
            http_port=http_port, dns_port=dns, challtestsrv=f"http://127.0.0.1:{chall_mgmt}", root_pem=root,
        )  # fmt: skip
    finally:
        for p in reversed(procs):
            stop(p)
        logs.close()
        shutil.rmtree(tmp, ignore_errors=True)
