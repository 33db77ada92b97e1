"""Full chains for compact probe results (see `prober.compaction`).

A probe result reports a chain in full the first time a domain serves it, and by
fingerprints afterwards. The processor keeps every certificate it has seen by fingerprint,
in its own transaction, so by the time a reference arrives (always later in the log) the
facts are here. A reference that cannot be resolved is a broken invariant, not a site
problem: it raises rather than misclassify.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from psycopg.types.json import Jsonb

from certwatch.platform.errors import CertwatchError
from certwatch.platform.eventlog import Conn


class UnresolvedChain(CertwatchError):
    """A chain reference names a certificate the store has never seen."""


async def expand(conn: Conn, results: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Store the full chains in `results` and return them with every reference resolved."""
    full = {
        cert["sha256"]: cert for r in results for e in r.get("endpoints", []) for cert in e.get("chain") or []
    }
    if full:
        await conn.execute(
            "INSERT INTO classifier_chain_certs (sha256, facts)"
            " SELECT * FROM unnest(%b::text[], %b::jsonb[]) ON CONFLICT (sha256) DO NOTHING",
            (list(full), [Jsonb(c) for c in full.values()]),
        )
    wanted = {fp for r in results for e in r.get("endpoints", []) for fp in e.get("chain_ref") or []}
    missing = wanted - full.keys()
    if missing:
        cur = await conn.execute(
            "SELECT sha256, facts FROM classifier_chain_certs WHERE sha256 = ANY(%b)", (list(missing),)
        )
        full.update({row[0]: row[1] for row in await cur.fetchall()})
        unknown = missing - full.keys()
        if unknown:
            raise UnresolvedChain(f"chain references to unknown certificates: {sorted(unknown)[:3]}")
    return [_resolved(r, full) for r in results] if wanted else list(results)


def _resolved(result: dict[str, Any], certs: dict[str, Any]) -> dict[str, Any]:
    endpoints = []
    for endpoint in result.get("endpoints", []):
        refs = endpoint.get("chain_ref")
        if refs:
            endpoint = {k: v for k, v in endpoint.items() if k != "chain_ref"}
            endpoint["chain"] = [certs[fp] for fp in refs]
        endpoints.append(endpoint)
    return {**result, "endpoints": endpoints}
