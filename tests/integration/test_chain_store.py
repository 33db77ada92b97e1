"""Compact probe results get their chains back from the processor's certificate store."""

from __future__ import annotations

from typing import Any

import pytest
from psycopg_pool import AsyncConnectionPool

from certwatch.classifier.chain_store import UnresolvedChain, expand

LEAF = {"sha256": "aa", "subject": "CN=x"}
MID = {"sha256": "bb", "subject": "CN=mid"}


async def test_full_chains_are_stored_and_references_resolved(pool: AsyncConnectionPool[Any]) -> None:
    full = {"endpoints": [{"ip": "127.0.0.1", "chain": [LEAF, MID]}]}
    ref = {"endpoints": [{"ip": "127.0.0.1", "chain": [], "chain_ref": ["aa", "bb"]}]}
    async with pool.connection() as conn:
        assert await expand(conn, [full]) == [full]
        (resolved,) = await expand(conn, [ref])
    assert resolved == {"endpoints": [{"ip": "127.0.0.1", "chain": [LEAF, MID]}]}


async def test_a_reference_in_the_same_page_as_its_full_report_resolves(
    pool: AsyncConnectionPool[Any],
) -> None:
    full = {"endpoints": [{"ip": "127.0.0.1", "chain": [LEAF]}]}
    ref = {"endpoints": [{"ip": "127.0.0.1", "chain": [], "chain_ref": ["aa"]}]}
    async with pool.connection() as conn:
        _, resolved = await expand(conn, [full, ref])
    assert resolved["endpoints"][0]["chain"] == [LEAF]


async def test_an_unknown_reference_is_an_error_not_a_missing_certificate(
    pool: AsyncConnectionPool[Any],
) -> None:
    ref = {"endpoints": [{"ip": "127.0.0.1", "chain": [], "chain_ref": ["ff"]}]}
    async with pool.connection() as conn:
        with pytest.raises(UnresolvedChain, match="ff"):
            await expand(conn, [ref])
