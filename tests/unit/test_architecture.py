"""Services meet through contracts, not through each other's modules: the import-linter
contracts in pyproject.toml (`[tool.importlinter]`) hold, so a forbidden import fails here
as it fails `make check`."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
_LINT = "import sys; from importlinter.cli import lint_imports; sys.exit(lint_imports(no_cache=True, no_logo=True))"


def test_import_contracts_are_kept() -> None:
    paths = [str(ROOT / "services"), *filter(None, os.environ.get("PYTHONPATH", "").split(os.pathsep))]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(paths)}
    done = subprocess.run(
        [sys.executable, "-c", _LINT],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    assert " broken" in done.stdout and "0 broken" in done.stdout


def test_the_platform_names_no_service() -> None:
    """Not even in a string: the catalogue (`certwatch.services`) is handed to it."""
    from certwatch.services import SERVICES

    named = re.compile(r"\b(" + "|".join(SERVICES) + r")\b", re.IGNORECASE)
    found = [
        f"{path.name}:{n}: {line.strip()}"
        for path in sorted((ROOT / "services/certwatch/platform").glob("*.py"))
        for n, line in enumerate(path.read_text().splitlines(), 1)
        if named.search(line)
    ]
    assert found == []
