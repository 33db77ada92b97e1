"""Certificates and chains stored once, by content, readable by every service.

A certificate is keyed by the SHA-256 of its DER encoding; a chain (leaf first, as
presented) by the SHA-256 of its certificates' fingerprints concatenated. A chain's id is
the first 8 bytes of that digest: any writer computes it without a round trip, and an
observation row references a chain in 8 bytes. The full digest is stored too, and a
64-bit collision (about 3 in a million at 10 million distinct chains) is refused rather
than merged.

Fingerprints travel as lower-case hex, as everywhere else in certwatch; the tables hold
the 32 raw bytes.
"""

from __future__ import annotations

import base64
import hashlib
import textwrap
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from psycopg.types.json import Jsonb

from certwatch.platform.errors import CertwatchError
from certwatch.platform.eventlog import Conn

NO_CHAIN = 0  # the chain_id of "no chain presented" in observation rows


class ChainIdCollision(CertwatchError):
    """Two different chains share the first 8 bytes of their digest."""


@dataclass(frozen=True, slots=True)
class StoredCertificate:
    sha256: str  # lower-case hex of the DER's SHA-256
    facts: Mapping[str, Any]  # the parsed facts (rules.facts.CertFacts.to_dict())
    der: bytes | None = None  # None when only the facts are known

    def pem(self) -> str | None:
        if self.der is None:
            return None
        body = "\n".join(textwrap.wrap(base64.b64encode(self.der).decode(), 64))
        return f"-----BEGIN CERTIFICATE-----\n{body}\n-----END CERTIFICATE-----\n"


def chain_digest(fingerprints: Sequence[str]) -> bytes:
    if not fingerprints:
        raise ValueError("a chain has at least one certificate")
    return hashlib.sha256(b"".join(bytes.fromhex(fp) for fp in fingerprints)).digest()


def chain_id(fingerprints: Sequence[str]) -> int:
    """The chain's 8-byte id (never 0, which means no chain)."""
    return _id_of(chain_digest(fingerprints))


def _id_of(digest: bytes) -> int:
    value = int.from_bytes(digest[:8], "big", signed=True)
    return value or 1  # 0 is NO_CHAIN; a digest starting with 8 zero bytes is not going to happen


async def put_certificates(conn: Conn, certificates: Iterable[StoredCertificate]) -> None:
    """Store certificates not yet known; a DER learnt later fills in one stored without it."""
    unique = {c.sha256: c for c in certificates}
    if not unique:
        return
    await conn.execute(
        "INSERT INTO certificates (sha256, der, facts)"
        " SELECT * FROM unnest(%b::bytea[], %b::bytea[], %b::jsonb[])"
        " ON CONFLICT (sha256) DO UPDATE SET der = excluded.der"
        " WHERE certificates.der IS NULL AND excluded.der IS NOT NULL",
        (
            [bytes.fromhex(fp) for fp in unique],
            [c.der for c in unique.values()],
            [Jsonb(dict(c.facts)) for c in unique.values()],
        ),
    )


async def put_chains(conn: Conn, chains: Iterable[Sequence[str]]) -> list[int]:
    """Store these chains (one round trip) and return their ids, in order.

    Each chain goes as its concatenated fingerprints (what its digest is taken of), split
    into 32-byte fingerprints by the statement. Raises `ChainIdCollision` when a stored
    chain has the same id and another digest."""
    wanted = [tuple(chain) for chain in chains]
    unique = {chain: b"".join(bytes.fromhex(fp) for fp in chain) for chain in wanted}
    digests = {chain: chain_digest(chain) for chain in unique}
    if unique:
        cur = await conn.execute(
            "WITH input AS ("
            "  SELECT u.chain_id, u.sha256, ARRAY(SELECT substring(u.joined FROM i * 32 + 1 FOR 32)"
            "    FROM generate_series(0, length(u.joined) / 32 - 1) AS i ORDER BY i) AS fingerprints"
            "  FROM unnest(%b::bigint[], %b::bytea[], %b::bytea[]) AS u(chain_id, sha256, joined)),"
            " ins AS (INSERT INTO chains (chain_id, sha256, fingerprints) SELECT * FROM input"
            "  ON CONFLICT DO NOTHING)"
            " SELECT i.chain_id FROM input i JOIN chains c USING (chain_id) WHERE c.sha256 <> i.sha256",
            ([_id_of(d) for d in digests.values()], list(digests.values()), list(unique.values())),
        )
        clashes = [row[0] for row in await cur.fetchall()]
        if clashes:
            raise ChainIdCollision(f"chain ids {clashes[:3]} are taken by other chains")
    return [_id_of(digests[chain]) for chain in wanted]


async def get_chains(conn: Conn, chain_ids: Iterable[int]) -> dict[int, tuple[str, ...]]:
    """Fingerprints (hex, leaf first) of the chains stored under these ids."""
    cur = await conn.execute(
        "SELECT chain_id, fingerprints FROM chains WHERE chain_id = ANY(%b::bigint[])",
        (sorted(set(chain_ids) - {NO_CHAIN}),),
    )
    return {row[0]: tuple(bytes(fp).hex() for fp in row[1]) for row in await cur.fetchall()}


async def get_certificates(conn: Conn, fingerprints: Iterable[str]) -> dict[str, StoredCertificate]:
    cur = await conn.execute(
        "SELECT sha256, der, facts FROM certificates WHERE sha256 = ANY(%b::bytea[])",
        ([bytes.fromhex(fp) for fp in set(fingerprints)],),
    )
    found = {}
    for sha256, der, facts in await cur.fetchall():
        key = bytes(sha256).hex()
        found[key] = StoredCertificate(key, facts, None if der is None else bytes(der))
    return found
