"""What a stable domain's probe costs on disk and on the wire: today (two permanent events)
beside the observation store (issue 10 B), measured in the same run.

Run alone: `.venv/bin/python -m bench.observations` (from the repo root; needs tests/support).

One real probe of a local TLS server (test PKI: leaf + intermediate) gives the facts every
synthetic probe reuses, so sizes are a real chain's. Then, on one fresh durable PostgreSQL
and NATS:

- today: DOMAINS domains probed EVENT_ROUNDS rounds the way the prober records them
  (`compaction.compact`, then `append_batch` of ProbeCompleted in flushes of 500), the
  classifier's processor and status view caught up, and every event relayed to JetStream by
  the outbox. The first round (full chains) is measured apart: the figures are rounds 2+,
  where the domain serves what it served before. `events` and `classifier_status_history`
  by `pg_total_relation_size`; JetStream by the stream's bytes / messages.
- observations: DOMAINS x OBS_ROUNDS probes (one address each) as `probe_observations`
  rows, written with `observations.write` in COPY batches of 500, partitions made by the
  maintainer; bytes by `observations.bytes_on_disk` after VACUUM. Reference: the same rows,
  same COPY, into `bench_bare_observations` (unpartitioned, no index), batch by batch
  interleaved with the measured writes.
- the observation message: the compact result a classifier would classify (chain by
  reference), published to the bounded observation stream with `Nats-Msg-Id`.
"""

from __future__ import annotations

import ipaddress
import time
import uuid
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

from certwatch.classifier.processor import processor
from certwatch.prober.compaction import SCHEMA_VERSION as COMPACT_SCHEMA
from certwatch.prober.compaction import compact

from bench._common import Row, bounded, cli, fresh_servers, save
from certwatch.classifier.status_view import STATUS_VIEW
from certwatch.contracts import probe as pev
from certwatch.platform import bus as busmod
from certwatch.platform import certificates as certs
from certwatch.platform import db
from certwatch.platform import observation_stream as ostream
from certwatch.platform import observations as obs
from certwatch.platform.config import Settings
from certwatch.platform.eventlog import EventLog
from certwatch.platform.events import NewEvent
from certwatch.platform.outbox import OutboxRelay
from certwatch.platform.projection import catch_up
from certwatch.rules.facts import ProbeResult

BENCH = "observations"
DOMAINS = 2000
EVENT_ROUNDS = 4  # round 1 full chains, rounds 2-4 measured
OBS_ROUNDS = 50  # 100,000 observation rows
FLUSH = 500
TARGET_BYTES = 200.0


async def _real_probe() -> ProbeResult:
    from certwatch.prober.settings import probe_options
    from certwatch.prober.tls_probe import probe
    from tests.support.pki import TestPKI
    from tests.support.tls_server import server_context, tls_server

    host = "www.bench.test"
    with (
        TestPKI() as pki,
        tls_server(server_context(*pki.server_files(pki.leaf(host, org="Bench Org")))) as port,
    ):
        settings = Settings(allow_networks=(ipaddress.ip_network("127.0.0.0/8"),), ca_file=pki.ca_file,
                            resolve_overrides=(f"{host}:{port}:127.0.0.1",))  # fmt: skip
        result = await probe(host, port, options=probe_options(settings))
    if not result.endpoints or result.endpoints[0].phase != "done":
        raise RuntimeError(f"the reference probe failed: {result.endpoints}")
    return result


async def _size(conn: Any, *tables: str) -> int:
    cur = await conn.execute("SELECT sum(pg_total_relation_size(t::regclass))::bigint FROM unnest(%s::text[]) t",
                             (list(tables),))  # fmt: skip
    row = await cur.fetchone()
    return int(row[0] or 0)


async def _today(log: EventLog, bus: busmod.Bus, url: str, result: ProbeResult) -> dict[str, float]:
    """Rounds of ProbeCompleted -> processor -> DomainClassified + status history -> JetStream."""
    domains = [(str(uuid.uuid4()), str(uuid.uuid4())) for _ in range(DOMAINS)]
    reported: dict[str, frozenset[str]] = {}
    proc, relay = processor(log), OutboxRelay(log, bus, url, name="bench")
    sizes: list[
        tuple[int, int, int, int]
    ] = []  # (events, history, stream bytes, stream msgs) after each round
    async with log.pool.connection() as conn:
        await conn.execute("INSERT INTO outbox_relay (name, position) VALUES ('bench', 0)")
        for r in range(EVENT_ROUNDS):
            at = result.started_at + timedelta(minutes=5 * r)
            raw = replace(result, started_at=at).to_dict()
            batch = []
            for domain_id, account_id in domains:
                data, reported[domain_id] = compact(raw, reported.get(domain_id, frozenset()))
                batch.append((pev.stream_id(domain_id), [NewEvent(pev.PROBE_COMPLETED, {
                    "domain_id": domain_id, "account_id": account_id, "host": result.host, "port": result.port,
                    "generation": 1, "first_check": r == 0, "result": data, "prober": "bench"},
                    schema_version=COMPACT_SCHEMA, metadata={"account_id": account_id})], None))  # fmt: skip
            for start in range(0, len(batch), FLUSH):
                await log.append_batch(batch[start : start + FLUSH])
            await catch_up(log, proc)
            await catch_up(log, STATUS_VIEW)
            for _ in range(10_000):
                if not await relay.relay_once(conn):
                    break
            info = await bus.js.stream_info(busmod.STREAM)
            sizes.append((await _size(conn, "events"), await _size(conn, "classifier_status_history"),
                          info.state.bytes, info.state.messages))  # fmt: skip
        cur = await conn.execute(
            "SELECT event_type, count(*), avg(octet_length(data::text)), avg(pg_column_size(data))"
            " FROM events WHERE event_type IN ('ProbeCompleted', 'DomainClassified') AND stream_version > 1"
            " GROUP BY 1"
        )
        per_type = {row[0]: row[1:] for row in await cur.fetchall()}
        cur = await conn.execute("SELECT count(*) FROM events")
        total_events = (await cur.fetchone())[0]  # type: ignore[index]
    probes = DOMAINS * (EVENT_ROUNDS - 1)
    first, last = sizes[0], sizes[-1]
    return {
        "events_bytes": (last[0] - first[0]) / probes,
        "history_bytes": (last[1] - first[1]) / probes,
        "stream_bytes": (last[2] - first[2]) / probes,
        "events_per_probe": (last[3] - first[3]) / probes,
        "stream_bytes_per_msg": (last[2] - first[2]) / (last[3] - first[3]),
        "events_bytes_per_event": (last[0] - first[0]) / (last[3] - first[3]),
        "probe_json": float(per_type["ProbeCompleted"][1]), "classified_json": float(per_type["DomainClassified"][1]),
        "probe_stored": float(per_type["ProbeCompleted"][2]),
        "classified_stored": float(per_type["DomainClassified"][2]),
        "total_events": float(total_events),
    }  # fmt: skip


def _rows(result: ProbeResult, chain_id: int, domains: list[uuid.UUID], r: int) -> list[obs.Observation]:
    e = result.endpoints[0]
    at = datetime(2026, 6, 1, tzinfo=UTC) + timedelta(minutes=5 * r)
    return [
        obs.Observation(at + timedelta(milliseconds=i), d, e.ip, e.phase, "SECURE", tls_version=e.tls_version,
                        connect_ms=e.connect_ms, handshake_ms=e.handshake_ms, chain_id=chain_id)
        for i, d in enumerate(domains)
    ]  # fmt: skip


async def _observations(pool: Any, result: ProbeResult) -> dict[str, float]:
    domains = [uuid.uuid4() for _ in range(DOMAINS)]
    store_s = bare_s = 0.0
    async with pool.connection() as conn:
        chain = [c.sha256 for c in result.endpoints[0].chain]
        (chain_id,) = await certs.put_chains(conn, [chain])
        await obs.maintain(conn, today=datetime(2026, 6, 1, tzinfo=UTC).date())
        await conn.execute(
            "CREATE TABLE bench_bare_observations (LIKE probe_observations INCLUDING DEFAULTS)"
        )
        bare = f"COPY bench_bare_observations ({obs._COLUMNS}) FROM STDIN"
        empty = await obs.bytes_on_disk(conn)
        for r in range(OBS_ROUNDS):
            rows = _rows(result, chain_id, domains, r)
            for start in range(0, len(rows), FLUSH):
                page = rows[start : start + FLUSH]
                t0 = time.perf_counter()
                await obs.write(conn, page)
                t1 = time.perf_counter()
                async with conn.transaction(), conn.cursor() as cur, cur.copy(bare) as copy:
                    for row in page:
                        await copy.write_row(obs.encode(row))
                store_s, bare_s = store_s + t1 - t0, bare_s + time.perf_counter() - t1
        await conn.execute("VACUUM ANALYZE probe_observations")
        await conn.execute("VACUUM ANALYZE bench_bare_observations")
        total = await obs.bytes_on_disk(conn) - empty
        cur = await conn.execute(
            "SELECT coalesce(sum(pg_indexes_size(relid)), 0)::bigint FROM pg_partition_tree('probe_observations')"
            " WHERE isleaf"
        )
        index = int((await cur.fetchone())[0])  # type: ignore[index]
        bare_size = await _size(conn, "bench_bare_observations")
    n = DOMAINS * OBS_ROUNDS
    return {"bytes": total / n, "index_bytes": index / n, "bare_bytes": bare_size / n,
            "store_rate": n / store_s, "bare_rate": n / bare_s, "rows": float(n)}  # fmt: skip


async def _stream(bus: busmod.Bus, result: ProbeResult) -> tuple[float, float]:
    """JetStream bytes per observation message: the steady-state compact result (what a
    classifier classifies), and the packed observation rows (a probe classified where it
    was made: `observations.pack`). Each kind on a fresh stream."""
    raw = result.to_dict()
    _, seen = compact(raw, frozenset())
    data, _ = compact(raw, seen)
    sizes = []
    for kind in ("result", "packed"):
        await ostream.ensure_stream(bus.js)
        out = []
        for i in range(DOMAINS):
            domain = uuid.uuid4()
            body = ({"domain_id": str(domain), "account_id": str(uuid.uuid4()), "generation": 1, "first_check": False,
                     "result": data} if kind == "result"
                    else obs.pack(_rows(result, 1234567890123, [domain], i)))  # fmt: skip
            out.append(ostream.Outgoing(str(uuid.uuid4()), str(domain), body))
        for start in range(0, len(out), FLUSH):
            await ostream.publish(bus.js, out[start : start + FLUSH])
        state = (await bus.js.stream_info(ostream.STREAM)).state
        sizes.append(state.bytes / state.messages)
        await bus.js.delete_stream(ostream.STREAM)
    return sizes[0], sizes[1]


async def run() -> list[Row]:
    result = await _real_probe()
    with fresh_servers(BENCH) as (pg, nats):
        pool = await db.open_pool(pg.url, max_size=4)
        bus = await busmod.connect(nats.url, name="bench-observations")
        try:
            async with bounded(600, "today's path"):
                today = await _today(EventLog(pool), bus, pg.url, result)
            async with bounded(600, "observation writes"):
                stored = await _observations(pool, result)
            async with bounded(120, "observation stream"):
                message, packed = await _stream(bus, result)
        finally:
            await bus.close()
            await pool.close()
    today_bytes = today["events_bytes"] + today["history_bytes"]
    rows = [
        Row(BENCH, "observations: bytes a stable probe on disk (1 address, index incl.)", stored["bytes"], "B",
            "today: events + status history a probe", today_bytes, "max", TARGET_BYTES),
        Row(BENCH, "(diag) observations: of which index", stored["index_bytes"], "B",
            "bare table (no index), a row", stored["bare_bytes"]),
        Row(BENCH, "(diag) today: events a stable probe (permanent)", today["events_per_probe"], "events",
            note="target design: 0 (verdict changes only)"),
        Row(BENCH, "(diag) today: bytes in events a probe (index incl.)", today["events_bytes"], "B",
            note=f"{today['events_bytes_per_event']:.0f} B an event"),
        Row(BENCH, "(diag) today: classifier_status_history a probe", today["history_bytes"], "B"),
        Row(BENCH, "(diag) today: ProbeCompleted data (JSON text)", today["probe_json"], "B",
            note=f"{today['probe_stored']:.0f} B as stored jsonb"),
        Row(BENCH, "(diag) today: DomainClassified data (JSON text)", today["classified_json"], "B",
            note=f"{today['classified_stored']:.0f} B as stored jsonb"),
        Row(BENCH, "JetStream bytes a probe: packed observation message", packed, "B",
            "today: event stream bytes a probe", today["stream_bytes"],
            note=f"today {today['stream_bytes_per_msg']:.0f} B a message, 2 a probe"),
        Row(BENCH, "(diag) JetStream bytes a probe: compact result message", message, "B",
            "today: event stream bytes a probe", today["stream_bytes"]),
        Row(BENCH, "observation COPY writes (partitioned, indexed)", stored["store_rate"], "rows/s",
            "bare COPY, unpartitioned, no index", stored["bare_rate"]),
    ]  # fmt: skip
    save(BENCH, rows, {"domains": DOMAINS, "event_rounds": EVENT_ROUNDS, "observation_rows": stored["rows"],
                       "today": today, "observations": stored, "observation_message_bytes": {"result": message, "packed": packed}})  # fmt: skip
    return rows


if __name__ == "__main__":
    cli(BENCH, run)
