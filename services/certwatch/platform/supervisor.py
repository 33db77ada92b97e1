"""Keeps the children of `certwatch stack` running: restarts with backoff, bounded, logged.

Each start of a child gets a fresh pipe for its stdout and stderr; a thread copies it into
the child's size-capped log (`logs.RotatingFile`) and keeps its last lines. The pipe closes
when the child and everything it forked have exited, so by the time a death is reported
its tail is complete, and the report can say why instead of pointing at a file.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from certwatch.platform import logs


class GiveUp(Exception):
    """A child died too often; the message says which, how, and its last log lines."""


@dataclass(frozen=True, slots=True)
class RestartPolicy:
    """Exponential backoff from `first_delay_s`, capped; more than `limit` restarts within
    `window_s` means the child cannot run (a crash loop), and the stack stops with why."""

    first_delay_s: float = 0.5
    max_delay_s: float = 30.0
    limit: int = 5
    window_s: float = 300.0

    def recent(self, restarts: Sequence[float], now: float) -> int:
        return sum(1 for at in restarts if now - at < self.window_s)

    def delay(self, recent: int) -> float:
        return float(min(self.max_delay_s, self.first_delay_s * 2**recent))


def _always() -> bool:
    return True


@dataclass
class Child:
    """How to start one child. `spawn` gets the descriptor for its stdout and stderr and may
    block until the child is ready (the servers do); otherwise `ready` is polled. Children
    of a higher `tier` are stopped first (services, then NATS, then PostgreSQL)."""

    name: str
    spawn: Callable[[int], subprocess.Popen[bytes]]
    ready: Callable[[], bool] = _always
    stop_signal: int = signal.SIGTERM
    tier: int = 0


@dataclass
class _State:
    child: Child
    log: logs.RotatingFile
    tail: deque[str]
    proc: subprocess.Popen[bytes] | None = None
    pump: threading.Thread | None = None
    started_at: float = 0.0
    ready: bool = False
    restart_at: float = 0.0
    restarts: list[float] = field(default_factory=list)


def _pump(fd: int, sink: logs.RotatingFile, tail: deque[str]) -> None:
    with open(fd, "rb") as pipe:
        for line in iter(lambda: pipe.readline(65536), b""):
            sink.write(line)
            tail.append(line.decode(errors="replace").rstrip("\n"))


def describe_exit(code: int) -> str:
    if code < 0:
        with_name = signal.Signals(-code).name if -code in signal.valid_signals() else str(-code)
        return f"was killed by {with_name}"
    return f"exited with status {code}"


def _stderr(message: str) -> None:
    print(f"certwatch stack: {message}", file=sys.stderr, flush=True)


class Supervisor:
    """Start children in order, then `poll()` often: it notices deaths, restarts after the
    backoff, and raises `GiveUp` when a child is in a crash loop."""

    def __init__(
        self,
        children: Sequence[Child],
        log_dir: Path,
        *,
        policy: RestartPolicy = RestartPolicy(),
        say: Callable[[str], None] = _stderr,
        start_timeout_s: float = 60.0,
        tail_lines: int = 20,
        max_log_bytes: int = 10 * 2**20,
    ) -> None:
        log_dir.mkdir(parents=True, exist_ok=True)
        self._states = {
            c.name: _State(c, logs.RotatingFile(log_dir / f"{c.name}.log", max_bytes=max_log_bytes),
                           deque(maxlen=tail_lines))
            for c in children
        }  # fmt: skip
        self._policy = policy
        self._say = say
        self._start_timeout = start_timeout_s

    def start(self, name: str) -> None:
        """Start one child now; errors from its `spawn` propagate (a first start that fails
        is the caller's to report)."""
        st = self._states[name]
        read, write = os.pipe()
        st.pump = threading.Thread(
            target=_pump, args=(read, st.log, st.tail), name=f"log-{name}", daemon=True
        )
        st.pump.start()
        try:
            st.proc = st.child.spawn(write)
        finally:
            os.close(write)
        st.started_at = time.monotonic()
        st.ready = False

    def pid(self, name: str) -> int | None:
        proc = self._states[name].proc
        return proc.pid if proc is not None and proc.poll() is None else None

    def all_ready(self) -> bool:
        return all(st.ready for st in self._states.values())

    def tail(self, name: str) -> list[str]:
        return [logs.readable(line) for line in self._states[name].tail]

    def poll(self) -> None:
        now = time.monotonic()
        for name, st in self._states.items():
            if st.proc is None:
                if now >= st.restart_at:
                    self._restart(name, st)
                continue
            code = st.proc.poll()
            if code is None:
                if not st.ready and st.child.ready():
                    st.ready = True
                    if st.restarts:
                        self._say(f"{name} is running again (pid {st.proc.pid})")
                elif not st.ready and now - st.started_at > self._start_timeout:
                    st.proc.kill()
                    st.proc.wait(5)
                    self._died(name, st, f"was not ready within {self._start_timeout:g}s")
                continue
            self._died(
                name,
                st,
                describe_exit(code) + ("" if st.ready else " while starting"),
                tail=not st.ready or code >= 0,
            )

    def _restart(self, name: str, st: _State) -> None:
        st.restarts.append(time.monotonic())
        try:
            self.start(name)
        except (RuntimeError, OSError, subprocess.SubprocessError) as exc:
            st.proc = None
            self._died(name, st, f"could not start ({exc})")

    def _died(self, name: str, st: _State, how: str, *, tail: bool = True) -> None:
        """Schedule the restart; the log's tail goes with the news unless it cannot explain
        it (a child killed by a signal once running wrote nothing about that)."""
        if st.pump is not None:
            st.pump.join(1.0)  # the rest of what it wrote
        st.proc = None
        st.ready = False
        policy = self._policy
        now = time.monotonic()
        recent = policy.recent(st.restarts, now)
        lines = "".join(f"\n    {line}" for line in self.tail(name)) or "\n    (it wrote nothing)"
        where = f"last lines of {st.log.path}:{lines}" if tail else f"see {st.log.path}"
        if recent >= policy.limit:
            raise GiveUp(
                f"{name} {how}; it was restarted {recent} times in {policy.window_s:.0f}s, giving up; {where}"
            )
        delay = policy.delay(recent)
        st.restart_at = now + delay
        self._say(
            f"{name} {how}; restarting it in {delay:g}s (restart {recent + 1}, at most {policy.limit} in {policy.window_s:g}s); {where}"
        )

    def stop(self, grace_s: float = 20.0) -> None:
        """Stop every child, highest tier first; each tier gets `grace_s`, then SIGKILL."""
        for tier in sorted({st.child.tier for st in self._states.values()}, reverse=True):
            group = [st for st in self._states.values() if st.child.tier == tier and st.proc is not None]
            for st in group:
                assert st.proc is not None
                if st.proc.poll() is None:
                    st.proc.send_signal(st.child.stop_signal)
            deadline = time.monotonic() + grace_s
            for st in group:
                assert st.proc is not None
                try:
                    st.proc.wait(max(0.1, deadline - time.monotonic()))
                except subprocess.TimeoutExpired:
                    st.proc.kill()
                    st.proc.wait(5)
                if st.pump is not None:
                    st.pump.join(1.0)
        for st in self._states.values():
            st.log.close()
