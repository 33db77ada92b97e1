"""`Vault.rotate` in batches: every key a previous master key wrapped is rewrapped once, the
other prefixes' keys are left alone, and what was sealed still opens under the new key alone."""

from __future__ import annotations

from typing import Any

import pytest
from psycopg_pool import AsyncConnectionPool

from certwatch.platform.shredding import MasterKeyError, Vault, new_master_key, parse_master_key


async def test_rotation_in_batches_rewraps_its_prefix_only(pool: AsyncConnectionPool[Any]) -> None:
    old, new = parse_master_key(new_master_key()), parse_master_key(new_master_key())
    subjects = [f"contact:{i}" for i in range(7)] + ["vod-access-key:1"]
    async with pool.connection() as conn:
        sealed = {s: await Vault(old).seal(conn, s, {"n": s}) for s in subjects}
        await conn.commit()
        rotating = Vault(new, [old])
        fresh = await rotating.seal(conn, "contact:fresh", "under the new key already")
        await conn.commit()
        assert await rotating.rotate(conn, prefix="contact:", batch=3) == 7  # three batches
        assert await rotating.rotate(conn, prefix="contact:", batch=3) == 0
        alone = Vault(new)
        for s in subjects[:-1]:
            assert await alone.open(conn, s, sealed[s]) == {"n": s}
        assert await alone.open(conn, "contact:fresh", fresh) == "under the new key already"
        with pytest.raises(MasterKeyError):  # another service's prefix: left to that service
            await alone.open(conn, "vod-access-key:1", sealed["vod-access-key:1"])
