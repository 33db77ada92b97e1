"""Projection tables written a page at a time: the page's rows are read in one query, the
page's events folded into them in Python (pure, per row key), and what changed written back
with one statement per table (`INSERT … SELECT FROM unnest(…) ON CONFLICT …`).

A statement per event caps a projection at about 16k events/s (bench/event_log.py) and makes
every command that waits on it (read-your-writes) wait for that many round trips under load.
Folded rows are whole rows: an upsert sets every column, so the row written is exactly the
one the fold computed, whatever was there before.

Arrays cross in binary (`%b`), one per column. A column that is itself an array (`text[]`)
or `jsonb` crosses as text in its PostgreSQL literal form and is cast back in SQL: unnest
would flatten an array of arrays.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import orjson

from certwatch.platform.eventlog import Conn

Row = dict[str, Any]

# SQL type -> (array type of the parameter, how a value crosses)
_AS_TEXT = {"text[]", "jsonb", "xid8"}


def array_literal(values: Sequence[str]) -> str:
    """The PostgreSQL literal of a one-dimensional text array (every element quoted)."""
    quoted = ('"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"' for v in values)
    return "{" + ",".join(quoted) + "}"


def _param(sql_type: str, value: Any) -> Any:
    if value is None:
        return None
    if sql_type == "text[]":
        return array_literal(value)
    if sql_type == "jsonb":
        return orjson.dumps(value).decode()
    if sql_type == "xid8":
        return str(value)
    return value


@dataclass(frozen=True)
class PageTable:
    """A projection table keyed by one column; `columns` maps every column (the key
    included) to its SQL type. Rows are dicts by column; uuid values are strings."""

    name: str
    key: str
    columns: Mapping[str, str]

    def _select(self) -> str:
        return ", ".join(f"{c}::text AS {c}" if t == "uuid" else c for c, t in self.columns.items())

    async def load(self, conn: Conn, keys: Collection[object], *, lock: bool = False) -> dict[str, Row]:
        """The stored rows of `keys`, by key. `lock`: FOR UPDATE, in key order, for a
        table other writers change too (their changes wait; none is overwritten)."""
        if not keys:
            return {}
        suffix = f" ORDER BY {self.key} FOR UPDATE" if lock else ""
        cur = await conn.execute(
            f"SELECT {self._select()} FROM {self.name}"
            f" WHERE {self.key} = ANY(%b::{self.columns[self.key]}[]){suffix}",
            (list(keys),),
        )
        names = list(self.columns)
        return {str(r[0]): dict(zip(names, r, strict=True)) for r in await cur.fetchall()}

    async def insert(self, conn: Conn, rows: Sequence[Row], *, on_conflict: str = "") -> None:
        """Insert `rows` in one statement. `on_conflict`: "" (a duplicate key fails),
        "nothing", or "update" (every column from the new row)."""
        if not rows:
            return
        names = list(self.columns)
        arrays = [f"%b::{'text' if t in _AS_TEXT else t.removesuffix('[]')}[]" for t in self.columns.values()]
        casts = [f"u.{c}::{t}" if t in _AS_TEXT else f"u.{c}" for c, t in self.columns.items()]
        sql = (
            f"INSERT INTO {self.name} ({', '.join(names)}) SELECT {', '.join(casts)}"
            f" FROM unnest({', '.join(arrays)}) AS u({', '.join(names)})"
        )
        if on_conflict == "nothing":
            sql += f" ON CONFLICT ({self.key}) DO NOTHING"
        elif on_conflict == "update":
            sets = ", ".join(f"{c} = excluded.{c}" for c in names if c != self.key)
            sql += f" ON CONFLICT ({self.key}) DO UPDATE SET {sets}"
        elif on_conflict:
            raise ValueError(f"on_conflict: {on_conflict!r} is not '', 'nothing' or 'update'")
        params = [[_param(t, row[c]) for row in rows] for c, t in self.columns.items()]
        await conn.execute(sql.encode(), params)

    async def delete(self, conn: Conn, keys: Collection[object], *, column: str | None = None) -> None:
        """Delete the rows whose `column` (the key by default) is one of `keys`."""
        if not keys:
            return
        column = column or self.key
        await conn.execute(
            f"DELETE FROM {self.name} WHERE {column} = ANY(%b::{self.columns[column]}[])".encode(),
            (list(keys),),
        )

    async def write(self, conn: Conn, loaded: Mapping[str, Row], folded: Mapping[str, Row | None]) -> None:
        """Store the fold of a page: rows it removed (None) are deleted, rows it changed
        upserted whole; rows left as they were loaded are not written."""
        await self.delete(conn, [k for k, row in folded.items() if row is None and k in loaded])
        changed = [row for k, row in folded.items() if row is not None and row != loaded.get(k)]
        await self.insert(conn, changed, on_conflict="update")
