"""`certwatch stack` as a user runs it: a real process tree on free ports, killed and restarted.

Every stack here gets free ports for all its children (services by CERTWATCH_*_PORT, the
servers through a pre-written var/stack.json), so it never meets another stack; each is
stopped by SIGTERM, and its process group killed if that fails.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import grpc
import httpx
import pytest
from cryptography import x509
from grpc_health.v1 import health_pb2, health_pb2_grpc

from certwatch.cli.main import main
from certwatch.platform import localstack
from certwatch.services import HTTP_SERVICES, PORTS

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="process supervision uses Linux /proc")


def _wait_until(condition: Callable[[], object], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(0.1)


@dataclass
class RunningStack:
    proc: subprocess.Popen[bytes]
    var: Path
    output: Path
    env: dict[str, str]
    ports: dict[str, int]

    def text(self) -> str:
        return self.output.read_text(errors="replace")

    def child_pid(self, match: Callable[[str], bool]) -> int:
        """The pid of the stack's direct child whose command line matches."""
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            with contextlib.suppress(OSError):
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
                cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
                if ppid == self.proc.pid and match(cmdline):
                    return int(entry.name)
        raise AssertionError(f"no such child of the stack; output:\n{self.text()[-3000:]}")

    def serving(self) -> bool:
        for name, port in self.ports.items():
            if name in HTTP_SERVICES:
                try:
                    if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).text != "SERVING":
                        return False
                except httpx.HTTPError:
                    return False
                continue
            try:
                with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
                    reply = health_pb2_grpc.HealthStub(channel).Check(
                        health_pb2.HealthCheckRequest(), timeout=1
                    )
            except grpc.RpcError:
                return False
            if reply.status != health_pb2.HealthCheckResponse.SERVING:
                return False
        return True


def _free_ports(n: int) -> list[int]:
    ports: set[int] = set()
    while len(ports) < n:
        ports.add(localstack.free_port())
    return sorted(ports)


def _start(var: Path, extra_env: dict[str, str] | None = None, *args: str) -> RunningStack:
    var.mkdir(parents=True, exist_ok=True)
    if not (var / "stack.json").exists():
        pg, nats, vod_http = _free_ports(3)
        localstack.save_ports(var, {"postgres": pg, "nats": nats, "vod_http": vod_http})
    ports = dict(zip(PORTS, _free_ports(len(PORTS)), strict=True))
    env = {
        **os.environ,
        **{f"CERTWATCH_{n.upper()}_PORT": str(p) for n, p in ports.items()},
        **(extra_env or {}),
    }
    output = var.parent / f"stack-{time.monotonic_ns()}.out"
    with open(output, "wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "certwatch.cli.main", "stack", "--var", str(var), *args],
            env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
    return RunningStack(proc, var, output, env, ports)


def _stop(stack: RunningStack) -> None:
    if stack.proc.poll() is None:
        stack.proc.send_signal(signal.SIGTERM)
        try:
            stack.proc.wait(45)
        except subprocess.TimeoutExpired:
            os.killpg(stack.proc.pid, signal.SIGKILL)
            stack.proc.wait(10)


@contextlib.contextmanager
def _scratch() -> Iterator[Path]:
    root = Path(tempfile.mkdtemp(prefix="certwatch-stack-"))
    root.chmod(0o755)  # the unprivileged PostgreSQL user must reach var/
    try:
        yield root
    finally:
        shutil.rmtree(root, ignore_errors=True)


def _wait_running(stack: RunningStack) -> None:
    _wait_until(
        lambda: "certwatch is running." in stack.text() or stack.proc.poll() is not None, 120, "the banner"
    )
    assert stack.proc.poll() is None, stack.text()


@pytest.fixture(scope="module")
def running() -> Iterator[RunningStack]:
    """One stack whose saved NATS port is held by someone else when it starts."""
    with _scratch() as root, socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        var = root / "var"
        var.mkdir()
        pg, vod_http = _free_ports(2)
        localstack.save_ports(var, {"postgres": pg, "nats": squatter.getsockname()[1], "vod_http": vod_http})
        stack = _start(var)
        try:
            _wait_running(stack)
            yield stack
        finally:
            _stop(stack)


def test_every_port_in_the_banner_credentials_and_state_is_the_one_in_use(running: RunningStack) -> None:
    text = running.text()
    banner = {m[1]: int(m[2]) for m in re.finditer(r"^  (\w+) +127\.0\.0\.1:(\d+) \(gRPC\)$", text, re.M)}
    console = re.search(r"^  Console +http://127\.0\.0\.1:(\d+)/ ", text, re.M)
    assert console is not None and {**banner, "console": int(console[1])} == running.ports
    creds = json.loads((running.var / "credentials.json").read_text())
    assert creds["console_user"] == "admin" and len(creds["console_password"]) >= 12
    assert creds["ports"] == running.ports
    state = localstack.saved_ports(running.var)
    assert {n: state[n] for n in PORTS} == running.ports
    assert f"nats://127.0.0.1:{state['nats']}" in text
    _wait_until(running.serving, 60, "every service SERVING on its CERTWATCH_*_PORT")
    signin = httpx.post(f"http://127.0.0.1:{running.ports['console']}/signin", timeout=10,
                        data={"username": creds["console_user"], "password": creds["console_password"]})  # fmt: skip
    assert signin.status_code == 303 and "certwatch_session" in signin.cookies
    assert f"  VOD API     http://127.0.0.1:{state['vod_http']}/ " in text
    assert _vod_refusal(state["vod_http"])["Code"] == "IncompleteSignature"  # served, in Alibaba's format


def _vod_refusal(port: int) -> dict[str, str]:
    try:
        urllib.request.urlopen(f"http://127.0.0.1:{port}/?Action=DescribeVodUserDomains", timeout=10)
    except urllib.error.HTTPError as exc:
        return dict(json.loads(exc.read()))
    raise AssertionError("an unsigned request was answered")


def _cli(capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    """The CLI in this process (a process per call costs seconds on a loaded machine)."""
    code = main(list(argv))
    out, err = capsys.readouterr()
    assert code == 0, err
    return out


def test_hosting_orders_from_the_local_pebble_the_stack_started(
    running: RunningStack, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A fresh stack: subscribe, apply, and the certificate is issued by the pebble in the
    banner, http-01 validated on loopback against hosting's own responder."""
    if not shutil.which("pebble"):
        pytest.skip("pebble is not installed (make deps)")
    line = re.search(r"^  ACME CA +https://127\.0\.0\.1:(\d+)/dir \(pebble: http-01 answered on 127\.0\.0\.1:(\d+),"
                     r".* issuing root (\S+)\)$", running.text(), re.M)  # fmt: skip
    assert line is not None, running.text()[-2000:]
    state = localstack.saved_ports(running.var)
    assert (int(line[1]), int(line[2])) == (state["acme"], state["acme_http01"])
    root = Path(line[3]).read_bytes()
    _wait_until(running.serving, 60, "every service SERVING")
    monkeypatch.setenv("CERTWATCH_CREDENTIALS", str(running.var / "credentials.json"))
    instances = json.loads(_cli(capsys, "hosting", "subscribe", "--years", "2", "--json"))["instances"]
    first = instances[0]["id"]
    _cli(capsys, "hosting", "apply", first, "--domain", "shop.example.test", "--company", "Example",
         "--contact-email", "ops@example.test")  # fmt: skip

    def hosted() -> bool:
        return bool(json.loads(_cli(capsys, "hosting", "list", "--json"))[0]["state"] == "HOSTED")

    _wait_until(hosted, 90, "the first instance HOSTED")
    (cert,) = json.loads(_cli(capsys, "certs", "list", "--json"))
    assert cert["names"] == ["shop.example.test"] and cert["issuer"].startswith("Pebble")
    pem = running.var / "hosted.pem"
    _cli(capsys, "certs", "download", cert["id"], "--format", "pem", "-o", str(pem))
    leaf, intermediate = x509.load_pem_x509_certificates(pem.read_bytes())
    leaf.verify_directly_issued_by(intermediate)
    intermediate.verify_directly_issued_by(x509.load_pem_x509_certificate(root))


def test_a_second_stack_on_the_same_var_refuses_at_once(running: RunningStack) -> None:
    started = time.monotonic()
    second = subprocess.run(
        [sys.executable, "-m", "certwatch.cli.main", "stack", "--var", str(running.var)],
        env=running.env, capture_output=True, text=True, timeout=30,
    )  # fmt: skip
    assert time.monotonic() - started < 15
    assert second.returncode == 2
    assert second.stdout == ""
    assert (
        second.stderr
        == f"certwatch: already running for {running.var}, pid {running.proc.pid}; stop that one first\n"
    )


def test_a_killed_service_is_restarted(running: RunningStack) -> None:
    victim = running.child_pid(lambda cmd: cmd.endswith("serve prober "))
    os.kill(victim, signal.SIGKILL)
    _wait_until(lambda: "prober is running again" in running.text(), 60, "the prober's restart")
    assert "prober was killed by SIGKILL; restarting it in 0.5s" in running.text()
    assert running.child_pid(lambda cmd: cmd.endswith("serve prober ")) != victim
    _wait_until(running.serving, 60, "every service SERVING")
    assert "prober was killed" in (running.var / "logs" / "stack.log").read_text()


def test_a_killed_postgres_is_restarted_and_the_services_recover(running: RunningStack) -> None:
    victim = running.child_pid(lambda cmd: "/postgres -D " in cmd)
    os.kill(victim, signal.SIGKILL)
    _wait_until(lambda: "postgres is running again" in running.text(), 90, "PostgreSQL's restart")
    assert "postgres was killed by SIGKILL; restarting it" in running.text()
    _wait_until(running.serving, 90, "every service SERVING again")


def test_a_service_that_exits_while_starting_shows_its_last_lines() -> None:
    with _scratch() as root:
        stack = _start(root / "var", {"CERTWATCH_MASTER_KEY": "not base64!"})
        try:
            _wait_until(lambda: "inventory exited with status" in stack.text() or stack.proc.poll() is not None,
                        120, "the inventory's failed start")  # fmt: skip
            text = stack.text()
            report = text[text.index("inventory exited with status") :]
            assert "while starting; restarting it in 0.5s" in report
            assert "last lines of" in report and "CERTWATCH_MASTER_KEY must be base64" in report, report
        finally:
            _stop(stack)


def test_bad_units_are_refused_before_anything_starts() -> None:
    with _scratch() as root:
        stack = _start(root / "var", None, "--units", "20000")
        assert stack.proc.wait(30) == 2
        assert stack.text() == "certwatch: --units: must be a whole number from 1 to 10000\n"
        assert not (root / "var" / "credentials.json").exists()


@pytest.mark.skipif(os.geteuid() != 0, reason="PostgreSQL runs as another user only when we are root")
def test_a_var_the_postgres_user_cannot_reach_is_a_clear_error() -> None:
    with _scratch() as root:
        locked = root / "locked"
        locked.mkdir(mode=0o700)
        stack = _start(locked / "var")
        assert stack.proc.wait(60) == 2, stack.text()
        assert f"cannot enter {locked} (mode 700)" in stack.text()
        assert f"chmod o+x {locked}" in stack.text()
