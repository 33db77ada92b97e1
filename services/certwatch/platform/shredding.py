"""Field encryption with per-subject keys (crypto-shredding).

Each subject (a contact, a hosted certificate's private key) has a random AES-256 data key,
stored wrapped by the master key (`CERTWATCH_MASTER_KEY`, 32 bytes, base64). Events carry
only ciphertext bound to the subject (AES-GCM with the subject as associated data).
`shred(subject)` deletes the data key: every copy of the data becomes unreadable.

Rotating the master key (the key-encryption key) rewraps data keys, never the data: a
Vault given the previous master keys opens what they wrapped, and `rotate` rewraps those
data keys under the current one, after which the previous keys can be dropped.
"""

from __future__ import annotations

import base64
import json
import os
from collections.abc import Mapping, Sequence
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from certwatch.platform.errors import CertwatchError
from certwatch.platform.eventlog import Conn

_PREFIX = "v1:"


class Shredded(CertwatchError):
    """The subject's key is gone (or never existed): the data was redacted."""


class MasterKeyError(CertwatchError):
    """The master key is missing or malformed."""


def parse_master_key(text: str, name: str = "CERTWATCH_MASTER_KEY") -> bytes:
    """`name` says which key in the message (never the key itself)."""
    try:
        key = base64.b64decode(text.strip(), validate=True)
    except ValueError as exc:
        raise MasterKeyError(f"{name} must be base64") from exc
    if len(key) != 32:
        raise MasterKeyError(f"{name} must decode to 32 bytes, got {len(key)}")
    return key


def new_master_key() -> str:
    return base64.b64encode(os.urandom(32)).decode()


class Vault:
    """Encrypts and decrypts JSON values for a subject; keys live in `subject_keys`."""

    def __init__(self, master_key: bytes, previous: Sequence[bytes] = ()) -> None:
        self._kek = AESGCM(master_key)
        self._previous = [AESGCM(k) for k in previous]

    def _unwrap(self, subject: str, wrapped: bytes) -> tuple[bytes, bool]:
        """The data key, and whether it was wrapped under a previous master key."""
        for i, kek in enumerate([self._kek, *self._previous]):
            try:
                return kek.decrypt(wrapped[:12], wrapped[12:], subject.encode()), i > 0
            except InvalidTag:
                continue
        raise MasterKeyError("the master key does not open this subject's data key")

    def _wrap(self, subject: str, key: bytes) -> bytes:
        nonce = os.urandom(12)
        return nonce + self._kek.encrypt(nonce, key, subject.encode())

    async def rotate(self, conn: Conn, *, prefix: str = "", batch: int = 5000) -> int:
        """Rewrap under the current master key every data key (of subjects starting with
        `prefix`) that a previous one wrapped; how many were rewrapped.

        In subject order, a transaction and one UPDATE per `batch` keys, locking nothing while
        it reads: a key shredded or rewrapped meanwhile (by another replica) is left as it is,
        and one created meanwhile is under the current key already (so the count read first
        bounds the passes).
        """
        async with conn.transaction():  # outside of one, each batch below commits on its own
            cur = await conn.execute(
                "SELECT count(*) FROM subject_keys WHERE starts_with(subject, %s)", (prefix,)
            )
            total = int((await cur.fetchone() or (0,))[0])
        count, after = 0, ""
        for _ in range(total // batch + 1):
            async with conn.transaction():
                cur = await conn.execute(
                    "SELECT subject, wrapped_key FROM subject_keys WHERE starts_with(subject, %s)"
                    " AND subject > %s ORDER BY subject LIMIT %s",
                    (prefix, after, batch),
                )
                rows = [(subject, bytes(wrapped)) for subject, wrapped in await cur.fetchall()]
                if not rows:
                    break
                after = rows[-1][0]
                subjects, old, new = [], [], []
                for subject, wrapped in rows:
                    key, previous = self._unwrap(subject, wrapped)
                    if previous:
                        subjects.append(subject)
                        old.append(wrapped)
                        new.append(self._wrap(subject, key))
                if subjects:
                    cur = await conn.execute(
                        "UPDATE subject_keys k SET wrapped_key = r.new"
                        " FROM unnest(%s::text[], %s::bytea[], %s::bytea[]) AS r(subject, old, new)"
                        " WHERE k.subject = r.subject AND k.wrapped_key = r.old",
                        (subjects, old, new),
                    )
                    count += cur.rowcount
        return count

    async def _data_key(self, conn: Conn, subject: str, *, create: bool) -> AESGCM:
        cur = await conn.execute("SELECT wrapped_key FROM subject_keys WHERE subject = %s", (subject,))
        row = await cur.fetchone()
        if row is None:
            if not create:
                raise Shredded(f"data of {subject} was redacted")
            key = AESGCM.generate_key(bit_length=256)
            await conn.execute(
                "INSERT INTO subject_keys (subject, wrapped_key) VALUES (%s, %s)",
                (subject, self._wrap(subject, key)),
            )
            return AESGCM(key)
        return AESGCM(self._unwrap(subject, bytes(row[0]))[0])

    async def seal(self, conn: Conn, subject: str, value: Any) -> str:
        key = await self._data_key(conn, subject, create=True)
        nonce = os.urandom(12)
        sealed = nonce + key.encrypt(nonce, json.dumps(value).encode(), subject.encode())
        return _PREFIX + base64.b64encode(sealed).decode()

    @staticmethod
    def _decrypt(key: AESGCM, subject: str, sealed: str) -> Any:
        if not sealed.startswith(_PREFIX):
            raise ValueError("not a sealed value")
        raw = base64.b64decode(sealed[len(_PREFIX) :])
        try:
            return json.loads(key.decrypt(raw[:12], raw[12:], subject.encode()))
        except InvalidTag as exc:
            raise Shredded(f"data of {subject} cannot be opened") from exc

    async def open(self, conn: Conn, subject: str, sealed: str) -> Any:
        if not sealed.startswith(_PREFIX):
            raise ValueError("not a sealed value")
        return self._decrypt(await self._data_key(conn, subject, create=False), subject, sealed)

    async def open_many(self, conn: Conn, sealed: Mapping[str, str]) -> dict[str, Any]:
        """`open` for many subjects (subject -> sealed value) with one key lookup; a subject
        whose key is gone, or whose value does not open, is left out (it was redacted)."""
        if not sealed:
            return {}
        cur = await conn.execute(
            "SELECT subject, wrapped_key FROM subject_keys WHERE subject = ANY(%s)", (list(sealed),)
        )
        out: dict[str, Any] = {}
        for subject, wrapped in await cur.fetchall():
            key = AESGCM(self._unwrap(subject, bytes(wrapped))[0])
            try:
                out[subject] = self._decrypt(key, subject, sealed[subject])
            except Shredded:
                continue
        return out

    @staticmethod
    async def shred(conn: Conn, subject: str) -> None:
        await conn.execute("DELETE FROM subject_keys WHERE subject = %s", (subject,))
