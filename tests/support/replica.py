"""A streaming replica of a test's PostgreSQL: `pg_basebackup -R` on loopback, then started
by a keeper like the primary; promotion by `pg_promote()`.

The primary is made to commit synchronously (`synchronous_standby_names = '*'`), as the chart's
README asks of production: a commit returns, and becomes visible to other sessions such as the
outbox relay, only once the replica has it, so a failover loses nothing anyone has seen.
"""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import psycopg

from certwatch.platform import localstack

TIMEOUT_S = 60.0


def base_backup(primary_port: int, data_dir: Path) -> None:
    """Copy the running primary at `primary_port` into `data_dir`, configured as its standby."""
    demote = localstack.Postgres(data_dir, 0)._demote()
    data_dir.mkdir(mode=0o700, parents=True)
    if demote:
        os.chown(data_dir, demote["user"], demote["group"])
    done = subprocess.run(
        [str(localstack.postgres_bindir() / "pg_basebackup"), "-h", "127.0.0.1", "-p", str(primary_port),
         "-U", "certwatch", "-D", str(data_dir), "-R", "-X", "stream", "--checkpoint=fast", "--no-sync"],
        capture_output=True, text=True, timeout=TIMEOUT_S, user=demote.get("user"), group=demote.get("group"),
    )  # fmt: skip
    assert done.returncode == 0, done.stderr


def synchronous(primary_url: str) -> None:
    """Commits on the primary wait for the standby; returns once the standby is streaming in sync."""
    with psycopg.connect(primary_url, autocommit=True) as conn:
        conn.execute("ALTER SYSTEM SET synchronous_standby_names = '*'")
        conn.execute("SELECT pg_reload_conf()")
        deadline = time.monotonic() + TIMEOUT_S
        while conn.execute(
            "SELECT count(*) FROM pg_stat_replication WHERE sync_state = 'sync'"
        ).fetchone() != (1,):
            assert time.monotonic() < deadline, "the standby never caught up in sync"
            time.sleep(0.1)


def promote(replica_url: str) -> None:
    with psycopg.connect(replica_url, autocommit=True) as conn:
        row = conn.execute("SELECT pg_promote(wait => true, wait_seconds => 60)").fetchone()
        assert row == (True,)
        assert conn.execute("SELECT pg_is_in_recovery()").fetchone() == (False,)
