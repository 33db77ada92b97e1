"""Structured (JSON) logs, with the active trace id, on stderr; size-capped log files."""

from __future__ import annotations

import json
import logging
import sys
import threading
import time
from pathlib import Path

from opentelemetry import trace

_STANDARD = set(logging.LogRecord("", 0, "", 0, "", None, None).__dict__) | {"message", "asctime"}


class JsonFormatter(logging.Formatter):
    def __init__(self, service: str) -> None:
        super().__init__()
        self._service = service

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "service": self._service,
            "logger": record.name,
            "msg": record.getMessage(),
        }
        span = trace.get_current_span().get_span_context()
        if span.is_valid:
            entry["trace_id"] = f"{span.trace_id:032x}"
            entry["span_id"] = f"{span.span_id:016x}"
        for key, value in record.__dict__.items():
            if key not in _STANDARD and not key.startswith("_"):
                entry[key] = value
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


def setup(service: str, *, level: str = "INFO", fmt: str = "json") -> None:
    handler = logging.StreamHandler(sys.stderr)
    if fmt == "json":
        handler.setFormatter(JsonFormatter(service))
    else:
        handler.setFormatter(logging.Formatter(f"%(asctime)s {service} %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)


class RotatingFile:
    """Appends bytes to `path`; past `max_bytes` it becomes `path.1` (… `path.<backups>`).

    `certwatch stack` writes every child's stdout and stderr through one of these, so what a
    crash prints is kept and bounded too, and no child has to know about rotation.
    """

    def __init__(self, path: Path, *, max_bytes: int = 10 * 2**20, backups: int = 3) -> None:
        self.path = path
        self._max = max_bytes
        self._backups = backups
        self._lock = threading.Lock()
        self._file = open(path, "ab")  # noqa: SIM115 - closed by close()
        self._size = self._file.tell()

    def write(self, data: bytes) -> None:
        with self._lock:
            if self._file.closed:  # a straggler writing after the stack closed its logs
                return
            if self._size and self._size + len(data) > self._max:
                self._rotate()
            self._file.write(data)
            self._file.flush()
            self._size += len(data)

    def _rotate(self) -> None:
        self._file.close()
        for n in range(self._backups - 1, 0, -1):
            older = self.path.with_name(f"{self.path.name}.{n}")
            if older.exists():
                older.replace(self.path.with_name(f"{self.path.name}.{n + 1}"))
        if self._backups:
            self.path.replace(self.path.with_name(f"{self.path.name}.1"))
        else:
            self.path.unlink()
        self._file = open(self.path, "ab")  # noqa: SIM115
        self._size = 0

    def close(self) -> None:
        with self._lock:
            self._file.close()


def readable(line: str) -> str:
    """One of our JSON log lines as a person reads it (`ts level logger: msg`, then the
    traceback); anything else unchanged. For the log tails `certwatch stack` prints."""
    try:
        entry = json.loads(line)
    except ValueError:
        return line
    if not isinstance(entry, dict) or "msg" not in entry:
        return line
    text = f"{entry.get('ts', '')} {str(entry.get('level', '')).upper()} {entry.get('logger', '')}: {entry['msg']}"
    return f"{text}\n{entry['exc']}" if entry.get("exc") else text
