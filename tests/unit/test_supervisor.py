"""The local stack's supervisor with real child processes: restarts, backoff, giving up, logs."""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from certwatch.cli.stack import PREFERRED_PORTS, choose_ports
from certwatch.platform import logs
from certwatch.platform.supervisor import Child, GiveUp, RestartPolicy, Supervisor

FAST = RestartPolicy(first_delay_s=0.05, max_delay_s=0.2, limit=3, window_s=60)


def _shell(script: str) -> Callable[[int], subprocess.Popen[bytes]]:
    def spawn(output: int) -> subprocess.Popen[bytes]:
        return subprocess.Popen(["sh", "-c", script], stdout=output, stderr=output)

    return spawn


def _poll_until(supervisor: Supervisor, done: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not done():
        assert time.monotonic() < deadline, "condition not reached in time"
        supervisor.poll()
        time.sleep(0.02)


def test_backoff_doubles_up_to_the_cap_and_counts_only_the_window() -> None:
    policy = RestartPolicy(first_delay_s=0.5, max_delay_s=4, limit=5, window_s=300)
    assert [policy.delay(n) for n in range(6)] == [0.5, 1, 2, 4, 4, 4]
    assert policy.recent([0.0, 100.0, 250.0], now=320.0) == 2


def test_a_dead_child_is_restarted_and_reported_with_its_last_lines(tmp_path: Path) -> None:
    said: list[str] = []
    marker = tmp_path / "ran"
    # The first run dies while starting (it writes why); the second stays up.
    script = f"if [ -e {marker} ]; then exec sleep 30; fi; touch {marker}; echo 'bad setting X'; exit 3"
    sup = Supervisor([Child("svc", _shell(script))], tmp_path / "logs", policy=FAST, say=said.append)
    sup.start("svc")
    try:
        first = sup.pid("svc")
        _poll_until(sup, lambda: sup.pid("svc") not in (None, first) and sup.all_ready())
    finally:
        sup.stop(grace_s=2)
    assert "svc exited with status 3; restarting it in 0.05s" in said[0]
    assert "bad setting X" in said[0]
    assert "svc is running again" in said[1]
    assert "bad setting X" in (tmp_path / "logs" / "svc.log").read_text()


def test_a_crash_loop_gives_up_saying_why(tmp_path: Path) -> None:
    said: list[str] = []
    sup = Supervisor(
        [Child("svc", _shell("echo 'cannot bind'; exit 1"))], tmp_path, policy=FAST, say=said.append
    )
    sup.start("svc")
    try:
        with pytest.raises(
            GiveUp, match=r"svc exited with status 1 while starting; it was restarted 3 times"
        ) as info:
            _poll_until(sup, lambda: False)
    finally:
        sup.stop(grace_s=2)
    assert "cannot bind" in str(info.value)
    assert len(said) == 3


def test_a_child_not_ready_in_time_is_killed_and_restarted(tmp_path: Path) -> None:
    said: list[str] = []
    child = Child("slow", _shell("exec sleep 30"), ready=lambda: False)
    sup = Supervisor([child], tmp_path, policy=FAST, say=said.append, start_timeout_s=0.2)
    sup.start("slow")
    try:
        _poll_until(sup, lambda: bool(said))
    finally:
        sup.stop(grace_s=2)
    assert said[0].startswith("slow was not ready within 0.2s; restarting")


def test_stop_goes_from_the_highest_tier_down(tmp_path: Path) -> None:
    order = tmp_path / "order"
    children = [
        Child(
            name,
            _shell(f"trap 'echo {name} >> {order}; exit 0' TERM; while :; do sleep 0.05; done"),
            tier=tier,
        )
        for name, tier in (("db", 0), ("svc", 2), ("bus", 1))
    ]
    sup = Supervisor(children, tmp_path / "logs", policy=FAST, say=lambda _: None)
    for child in children:
        sup.start(child.name)
    time.sleep(0.2)  # let the shells install their traps
    sup.stop(grace_s=5)
    assert order.read_text().split() == ["svc", "bus", "db"]


def test_rotating_file_caps_each_file_and_keeps_the_newest(tmp_path: Path) -> None:
    sink = logs.RotatingFile(tmp_path / "x.log", max_bytes=100, backups=2)
    for i in range(30):
        sink.write(f"line {i:02d} ........\n".encode())  # 19 bytes
    sink.close()
    files = sorted(p.name for p in tmp_path.iterdir())
    assert files == ["x.log", "x.log.1", "x.log.2"]
    assert all(p.stat().st_size <= 100 for p in tmp_path.iterdir())
    assert (tmp_path / "x.log").read_text().splitlines()[-1].startswith("line 29")


def test_readable_renders_our_json_lines_and_leaves_others() -> None:
    line = json.dumps({"ts": "T", "level": "error", "logger": "x", "msg": "boom", "exc": "Traceback ..."})
    assert logs.readable(line) == "T ERROR x: boom\nTraceback ..."
    assert logs.readable("plain text") == "plain text"


def test_ports_keep_saved_ones_and_replace_those_taken() -> None:
    busy = {55432, 40001}
    picks = iter(range(41000, 41100))
    saved = {"postgres": 55432, "nats": 40002, "prober": 40001}
    ports = choose_ports(saved, {"vod": 40003}, lambda p: p not in busy, lambda: next(picks))
    assert ports["postgres"] == 41000  # saved but taken: a fresh one, not the default
    assert ports["nats"] == 40002
    assert ports["prober"] == 41001
    assert ports["vod"] == 40003  # explicit (CERTWATCH_VOD_PORT)
    assert ports["inventory"] == PREFERRED_PORTS["inventory"]  # nothing saved: the default
    assert len(set(ports.values())) == len(ports)
