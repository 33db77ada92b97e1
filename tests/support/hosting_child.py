"""An orchestrator in a process of its own that stalls inside its first challenge, to be killed.

`python -m tests.support.hosting_child DATABASE_URL DIRECTORY CA_FILE MASTER_KEY`: it places
the due orders, then blocks where it would make the challenge answerable, so the test can
SIGKILL it after the order URL is recorded and before the order completes.
"""

from __future__ import annotations

import asyncio
import sys
import time

from certwatch.hosting.acme_client import CaConfig
from certwatch.hosting.orchestrator import Orchestrator
from certwatch.platform import db
from certwatch.platform.eventlog import EventLog
from certwatch.platform.shredding import Vault, parse_master_key

STALL_S = 120.0


class _Stall:
    def present(self, *_args: object) -> None:
        print("stalled", flush=True)
        time.sleep(STALL_S)

    def cleanup(self, *_args: object) -> None:
        pass


async def main(database_url: str, directory: str, ca_file: str, master_key: str) -> None:
    pool = await db.open_pool(database_url, max_size=4)
    orchestrator = Orchestrator(EventLog(pool), Vault(parse_master_key(master_key)), CaConfig(directory, ca_file),
                                _Stall())  # fmt: skip
    await orchestrator.run_due()


if __name__ == "__main__":
    asyncio.run(main(*sys.argv[1:5]))
