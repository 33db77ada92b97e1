"""Console users' module costs nothing until a password is checked."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap


def test_importing_the_module_hashes_no_password() -> None:
    """The dummy hash (the unknown username's) was made at import: an argon2id hash, ~0.25 s
    of CPU and 64 MiB, paid by every CLI command (`certwatch --help` included) and every
    service process, none of which signs anyone in but the console."""
    code = textwrap.dedent("""
        import argon2

        def refuse(*args, **kwargs):
            raise SystemExit("a password was hashed at import")

        argon2.PasswordHasher.hash = refuse
        import certwatch.console.users
        import certwatch.cli.main
    """)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                          env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)})  # fmt: skip
    assert done.returncode == 0, done.stderr
