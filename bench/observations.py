"""What a stable domain's probe costs now that probes are observations (issue 10 B), beside
what it cost before, and how fast the classifier turns observations into verdicts.

Run alone: `.venv/bin/python -m bench.observations` (from the repo root; needs tests/support).

One real probe of a local TLS server (test PKI: leaf + intermediate) gives the facts every
synthetic probe reuses, so sizes are a real chain's. Then, on one fresh durable PostgreSQL
and NATS:

- after (the path the services run): DOMAINS domains probed ROUNDS rounds, 5 minutes
  apart. Each round the certificates the prober would store are stored (round 1 only: the
  domain serves what it served before), a `ProbeObserved` per domain (chain by reference)
  is published to the bounded observation stream with `observation_stream.publish`, and
  the classifier's `ObservationConsumer` + `VerdictWriter` consume them. Round 1 (first
  verdicts, appended) is measured apart. PostgreSQL: growth of `probe_observations` (every
  partition, indexes included), `probe_latest` and `classifier_verdicts`
  (`pg_total_relation_size`, no VACUUM: what the rows and their in-place updates cost) over
  the rounds after SETTLED (the state tables, one row a domain updated in place with
  fillfactor 70, grow for a few rounds until HOT pruning reuses the pages' free space, then
  stay put: their growth while settling is reported apart, and their size per domain);
  events counted after every round; JetStream: the stream's bytes / messages.
- before issue 10 B: its code is gone, so its storage is measured by appending what it
  appended, in a database of its own on the same server (`bench_before`, same migrations):
  per probe a ProbeCompleted-shaped event (v2: full chain the first round, `chain_ref`
  after, what `prober.compaction` wrote) and a DomainClassified-shaped event (the
  classifier's own verdict of the same probe), appended in flushes of 500 streams, over
  BEFORE_ROUNDS rounds (rounds 2+ measured); the
  status view (`classifier_status_history`, one row a verdict) caught up, and every event
  relayed to JetStream's event stream by the outbox. Labelled "before (old-shaped events)".
- classifier throughput, stable domains (after their first round): `VerdictWriter` called
  with batches of 512 decoded messages, exactly what `ObservationConsumer.fetch_once`
  hands it, batch by batch interleaved with a bare reference doing the SQL a batch needs
  (lock the verdict rows, COPY the observation rows, upsert the latest and verdict rows:
  one transaction, rows encoded beforehand) on tables of the same shape; then through real
  JetStream: publish a round, `ObservationConsumer.fetch_once` until it is consumed,
  beside a consumer with a no-op handler over the same messages (the JetStream floor).

Contracts decode cost per event (msgspec vs dicts) is `bench/contracts.py`.
"""

from __future__ import annotations

import ipaddress
import itertools
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from psycopg.conninfo import make_conninfo

from bench._common import Row, bounded, cli, fresh_servers, save, self_cpu
from certwatch.classifier.status_view import STATUS_VIEW
from certwatch.classifier.verdicts import VerdictWriter, classified
from certwatch.contracts import probe as pev
from certwatch.contracts import status as sc
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
from certwatch.prober.chain_refs import by_reference
from certwatch.rules.facts import ProbeResult
from certwatch.services import MIGRATIONS

BENCH = "observations"
DOMAINS = 2000
ROUNDS = 10  # round 1 first verdicts and full chains, then stable
SETTLED = 5  # rounds after which the in-place updates of the state tables stop growing them
BEFORE_ROUNDS = 4  # round 1 full chains, rounds 2-4 measured
FLUSH = 500  # the old prober's flush
BATCH = 512  # ObservationConsumer's default batch
RATE_DOMAINS = 10 * BATCH
RATE_ROUNDS = 4  # round 1 first verdicts (diag), rounds 2-4 measured
TARGET_BYTES = 200.0
TARGET_RATE = 5000.0
BEFORE_DB = "bench_before"
_BATCH_STATE_TABLES = ("probe_latest", "classifier_verdicts")


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


async def _one(conn: Any, sql: str, params: Sequence[Any] = ()) -> Any:
    cur = await conn.execute(sql, params)
    row = await cur.fetchone()
    return row[0] if row else None


async def _size(conn: Any, *tables: str) -> int:
    return int(await _one(conn, "SELECT coalesce(sum(pg_total_relation_size(t::regclass)), 0)::bigint"
                                " FROM unnest(%s::text[]) t", (list(tables),)) or 0)  # fmt: skip


async def _wal(conn: Any) -> int:
    return int(await _one(conn, "SELECT pg_current_wal_lsn() - '0/0'::pg_lsn"))


@dataclass(frozen=True, slots=True)
class Domains:
    ids: list[tuple[str, str]]  # (domain id, account id)

    @classmethod
    def new(cls, n: int) -> Domains:
        return cls([(str(uuid.uuid4()), str(uuid.uuid4())) for _ in range(n)])


def _at(result: ProbeResult, r: int) -> ProbeResult:
    return replace(result, started_at=result.started_at + timedelta(minutes=5 * r))


def _published(domains: Domains, result: ProbeResult, r: int) -> list[ostream.Outgoing]:
    """What the prober publishes for round `r`: a ProbeObserved a domain, chain by reference."""
    body = pev.ObservedResult.of(_at(result, r))
    out = []
    for domain_id, account_id in domains.ids:
        probe = pev.ProbeObserved(
            observation_id=str(uuid.uuid4()), domain_id=domain_id, account_id=account_id, host=result.host,
            port=result.port, generation=1, first_check=r == 0, result=body, prober="bench",
        )  # fmt: skip
        out.append(ostream.Outgoing(probe.observation_id, domain_id, probe.encode()))
    return out


def _delivered(messages: Sequence[ostream.Outgoing]) -> list[ostream.Incoming]:
    """As `ObservationConsumer.fetch_once` hands them over: the bodies as received."""
    return [ostream.Incoming(m.observation_id, m.body, 1) for m in messages]


async def _store_chains(conn: Any, result: ProbeResult) -> None:
    refs = by_reference(result.to_dict())
    chains, stored = refs.unstored(frozenset())
    async with conn.transaction():
        await certs.put_certificates(conn, stored)
        await certs.put_chains(conn, chains)


async def _consume(consumer: ostream.ObservationConsumer, until: int) -> float:
    """fetch_once until the consumer handled `until` in all; return the seconds it took."""
    t0 = time.perf_counter()
    for _ in range(100_000):
        if consumer.handled >= until:
            break
        await consumer.fetch_once()
    if consumer.handled != until:
        raise RuntimeError(f"consumer handled {consumer.handled}, expected {until}")
    return time.perf_counter() - t0


# ---------------------------------------------------------------- storage, after


async def _after(log: EventLog, bus: busmod.Bus, result: ProbeResult) -> dict[str, float]:
    domains = Domains.new(DOMAINS)
    writer = VerdictWriter(log)
    consumer = ostream.ObservationConsumer(bus.nc, "bench-storage", writer, batch=BATCH, idle_poll_s=0.2)
    sizes: list[dict[str, int]] = []
    raw = 0
    async with log.pool.connection() as conn:
        await _store_chains(conn, result)
        for r in range(ROUNDS):
            published = _published(domains, result, r)
            raw = len(published[0].body)
            for start in range(0, len(published), FLUSH):
                await ostream.publish(bus.nc, published[start : start + FLUSH])
            await _consume(consumer, DOMAINS * (r + 1))
            state = (await bus.js.stream_info(ostream.STREAM)).state
            sizes.append({
                "observations": await obs.bytes_on_disk(conn), "state": await _size(conn, *_BATCH_STATE_TABLES),
                "serving": await _size(conn, "classifier_observations"),
                "events": int(await _one(conn, "SELECT count(*) FROM events")), "events_bytes": await _size(conn, "events"),
                "stream_bytes": state.bytes, "stream_msgs": state.messages, "wal": await _wal(conn),
                "rows": int(await _one(conn, "SELECT count(*) FROM probe_observations")),
            })  # fmt: skip
        index = int(await _one(conn, "SELECT coalesce(sum(pg_indexes_size(relid)), 0)::bigint"
                                     " FROM pg_partition_tree('probe_observations') WHERE isleaf"))  # fmt: skip
    first, last = sizes[SETTLED - 1], sizes[-1]
    probes = DOMAINS * (ROUNDS - SETTLED)

    def grown(key: str) -> float:
        return (last[key] - first[key]) / probes

    per_round = [(b["events"] - a["events"]) / DOMAINS for a, b in itertools.pairwise(sizes)]
    return {
        "observation_bytes": grown("observations"), "state_bytes": grown("state"),
        "serving_bytes": grown("serving"), "index_bytes": index / last["rows"],
        "state_bytes_per_domain": last["state"] / DOMAINS, "serving_bytes_per_domain": last["serving"] / DOMAINS,
        "events_per_probe": grown("events"), "events_per_round": max(per_round),
        "events_bytes": grown("events_bytes"), "first_round_events_per_domain": sizes[0]["events"] / DOMAINS,
        "state_bytes_settling": (first["state"] - sizes[0]["state"]) / (DOMAINS * (SETTLED - 1)),
        "stream_bytes": grown("stream_bytes"), "stream_msgs_per_probe": grown("stream_msgs"),
        "message_json": float(raw), "wal_bytes": grown("wal"),
        "rows_per_probe": grown("rows"), "appended": float(writer.appended),
    }  # fmt: skip


# ---------------------------------------------------------------- storage, before (old-shaped)


def _old_shaped(domains: Domains, result: ProbeResult, r: int) -> list[tuple[str, list[NewEvent], None]]:
    """Per probe what the prober and classifier appended before issue 10 B."""
    at = _at(result, r)
    full = at.to_dict()
    body = full if r == 0 else by_reference(full).result  # prober.compaction: chain_ref after round 1
    out: list[tuple[str, list[NewEvent], None]] = []
    for domain_id, account_id in domains.ids:
        meta = {"account_id": account_id}
        data = {"domain_id": domain_id, "account_id": account_id, "host": result.host, "port": result.port,
                "generation": 1, "first_check": r == 0, "result": body, "prober": "bench"}  # fmt: skip
        probe = pev.ProbeObserved(
            observation_id=str(uuid.uuid4()), domain_id=domain_id, account_id=account_id, host=result.host,
            port=result.port, generation=1, first_check=r == 0, result=pev.ObservedResult.of(at),
        )  # fmt: skip
        verdict = classified(probe, at).new_event(metadata=meta)
        out.append((pev.stream_id(domain_id), [NewEvent(pev.PROBE_COMPLETED, data, None, 2, meta)], None))
        out.append((sc.stream_id(domain_id), [verdict], None))
    return out


async def _before(url: str, bus: busmod.Bus, result: ProbeResult) -> dict[str, float]:
    pool = await db.open_pool(url, max_size=4, migrate=MIGRATIONS)
    log = EventLog(pool)
    domains = Domains.new(DOMAINS)
    relay = OutboxRelay(log, bus, url, name="bench")
    sizes: list[tuple[int, int, int, int, int]] = []
    try:
        async with pool.connection() as conn:
            await conn.execute("INSERT INTO outbox_relay (name, position) VALUES ('bench', 0)")
            for r in range(BEFORE_ROUNDS):
                batch = _old_shaped(domains, result, r)
                for start in range(0, len(batch), FLUSH):
                    await log.append_batch(batch[start : start + FLUSH])
                await catch_up(log, STATUS_VIEW)
                for _ in range(10_000):
                    if not await relay.relay_once(conn):
                        break
                info = await bus.js.stream_info(busmod.STREAM)
                sizes.append((await _size(conn, "events"), await _size(conn, "classifier_status_history"),
                              info.state.bytes, info.state.messages, await _wal(conn)))  # fmt: skip
            cur = await conn.execute(
                "SELECT event_type, avg(octet_length(data::text)), avg(pg_column_size(data)) FROM events"
                " WHERE stream_version > 1 GROUP BY 1"
            )
            per_type = {row[0]: row[1:] for row in await cur.fetchall()}
    finally:
        await pool.close()
    probes = DOMAINS * (BEFORE_ROUNDS - 1)
    first, last = sizes[0], sizes[-1]
    return {
        "events_bytes": (last[0] - first[0]) / probes, "history_bytes": (last[1] - first[1]) / probes,
        "stream_bytes": (last[2] - first[2]) / probes, "events_per_probe": (last[3] - first[3]) / probes,
        "stream_bytes_per_msg": (last[2] - first[2]) / (last[3] - first[3]),
        "events_bytes_per_event": (last[0] - first[0]) / (last[3] - first[3]),
        "wal_bytes": (last[4] - first[4]) / probes,
        "probe_json": float(per_type[pev.PROBE_COMPLETED][0]), "probe_stored": float(per_type[pev.PROBE_COMPLETED][1]),
        "classified_json": float(per_type[sc.DOMAIN_CLASSIFIED][0]),
        "classified_stored": float(per_type[sc.DOMAIN_CLASSIFIED][1]),
    }  # fmt: skip


# ---------------------------------------------------------------- classifier throughput

_BARE_TABLES = (
    "CREATE TABLE bench_bare_observations (LIKE probe_observations INCLUDING ALL)",
    "CREATE TABLE bench_bare_latest (LIKE probe_latest INCLUDING ALL) WITH (fillfactor = 70)",
    "CREATE TABLE bench_bare_verdicts (LIKE classifier_verdicts INCLUDING ALL) WITH (fillfactor = 70)",
)


def _bare_rows(result: ProbeResult, domains: Sequence[str], r: int) -> tuple[list[tuple[Any, ...]], datetime]:
    e = result.endpoints[0]
    at = _at(result, r).started_at
    chain = certs.chain_id([c.sha256 for c in e.chain])
    rows = [obs.encode(obs.Observation(at, uuid.UUID(d), e.ip, e.phase, "SECURE", tls_version=e.tls_version,
                                       connect_ms=e.connect_ms, handshake_ms=e.handshake_ms, chain_id=chain))
            for d in domains]  # fmt: skip
    return rows, at


async def _bare_batch(conn: Any, domains: list[str], rows: list[tuple[Any, ...]], at: datetime) -> None:
    """The SQL a batch of stable probes needs, issued bare (rows encoded beforehand)."""
    ordered = sorted(domains)
    n = len(ordered)
    async with conn.transaction():
        await conn.execute("SELECT domain_id FROM bench_bare_verdicts WHERE domain_id = ANY(%b::uuid[])"
                           " ORDER BY domain_id FOR UPDATE", (ordered,))  # fmt: skip
        async with (
            conn.cursor() as cur,
            cur.copy(f"COPY bench_bare_observations ({obs._COLUMNS}) FROM STDIN") as cp,
        ):
            for row in rows:
                await cp.write_row(row)
        await conn.execute(
            "INSERT INTO bench_bare_latest (domain_id, observed_at) SELECT * FROM unnest(%b::uuid[], %b::timestamptz[])"
            " ON CONFLICT (domain_id) DO UPDATE SET observed_at = excluded.observed_at"
            " WHERE bench_bare_latest.observed_at < excluded.observed_at", (ordered, [at] * n))  # fmt: skip
        await conn.execute(
            "INSERT INTO bench_bare_verdicts (domain_id, checked_at, generation, verdict_key, streak)"
            " SELECT * FROM unnest(%b::uuid[], %b::timestamptz[], %b::int[], %b::bytea[], %b::int[])"
            " ON CONFLICT (domain_id) DO UPDATE SET checked_at = excluded.checked_at,"
            " generation = excluded.generation, verdict_key = excluded.verdict_key, streak = excluded.streak",
            (ordered, [at] * n, [1] * n, [b"k" * 16] * n, [1] * n))  # fmt: skip


async def _writer_rate(log: EventLog, result: ProbeResult) -> dict[str, float]:
    """VerdictWriter fed consumer-sized batches directly, beside the bare SQL of each batch."""
    domains = Domains.new(RATE_DOMAINS)
    ids = [d for d, _ in domains.ids]
    writer = VerdictWriter(log)
    timed = {"writer": 0.0, "bare": 0.0, "first": 0.0, "writer_cpu": 0.0, "bare_cpu": 0.0}
    async with log.pool.connection() as conn:
        for sql in _BARE_TABLES:
            await conn.execute(sql)
        for r in range(RATE_ROUNDS):
            messages = _delivered(_published(domains, result, r))
            rows, at = _bare_rows(result, ids, r)
            appended = writer.appended
            for start in range(0, len(messages), BATCH):
                c0, t0 = self_cpu(), time.perf_counter()
                await writer(messages[start : start + BATCH])
                c1, t1 = self_cpu(), time.perf_counter()
                await _bare_batch(conn, ids[start : start + BATCH], rows[start : start + BATCH], at)
                c2, t2 = self_cpu(), time.perf_counter()
                if r == 0:
                    timed["first"] += t1 - t0
                else:
                    timed["writer"] += t1 - t0
                    timed["bare"] += t2 - t1
                    timed["writer_cpu"] += c1 - c0
                    timed["bare_cpu"] += c2 - c1
            if r > 0 and writer.appended != appended:
                raise RuntimeError(f"stable round {r} appended {writer.appended - appended} events")
    n = RATE_DOMAINS * (RATE_ROUNDS - 1)
    return {"rate": n / timed["writer"], "bare_rate": n / timed["bare"], "first_rate": RATE_DOMAINS / timed["first"],
            "cpu_us": 1e6 * timed["writer_cpu"] / n, "bare_cpu_us": 1e6 * timed["bare_cpu"] / n,
            "observations": float(n)}  # fmt: skip


async def _consumer_rate(log: EventLog, bus: busmod.Bus, result: ProbeResult) -> dict[str, float]:
    """Through JetStream: a round published, then consumed by the classifier's consumer and,
    beside it, by a consumer with a no-op handler over the same messages."""
    domains = Domains.new(RATE_DOMAINS)

    async def nothing(batch: Sequence[ostream.Incoming]) -> None:
        return None

    writer = VerdictWriter(log)
    measured = ostream.ObservationConsumer(bus.nc, "bench-rate", writer, batch=BATCH, idle_poll_s=0.2)
    floor = ostream.ObservationConsumer(bus.nc, "bench-floor", nothing, batch=BATCH, idle_poll_s=0.2)
    await bus.js.delete_stream(ostream.STREAM)  # a stream of this phase's messages alone
    await ostream.ensure_stream(bus.js)
    timed = {"consumer": 0.0, "floor": 0.0, "publish": 0.0, "consumer_cpu": 0.0, "floor_cpu": 0.0}
    for r in range(RATE_ROUNDS):
        published = _published(domains, result, r)
        t0 = time.perf_counter()
        for start in range(0, len(published), FLUSH):
            await ostream.publish(bus.nc, published[start : start + FLUSH])
        publish_s = time.perf_counter() - t0
        c0 = self_cpu()
        consumer_s = await _consume(measured, RATE_DOMAINS * (r + 1))
        c1 = self_cpu()
        floor_s = await _consume(floor, RATE_DOMAINS * (r + 1))
        c2 = self_cpu()
        if r > 0:
            timed["publish"] += publish_s
            timed["consumer"] += consumer_s
            timed["floor"] += floor_s
            timed["consumer_cpu"] += c1 - c0
            timed["floor_cpu"] += c2 - c1
    n = RATE_DOMAINS * (RATE_ROUNDS - 1)
    return {"rate": n / timed["consumer"], "floor_rate": n / timed["floor"], "publish_rate": n / timed["publish"],
            "cpu_us": 1e6 * timed["consumer_cpu"] / n, "floor_cpu_us": 1e6 * timed["floor_cpu"] / n,
            "observations": float(n)}  # fmt: skip


async def run() -> list[Row]:
    result = await _real_probe()
    with fresh_servers(BENCH) as (pg, nats):
        pool = await db.open_pool(pg.url, max_size=4, migrate=MIGRATIONS)
        bus = await busmod.connect(nats.url, name="bench-observations")
        try:
            await ostream.ensure_stream(bus.js)
            async with pool.connection() as conn:
                await obs.maintain(conn, today=result.started_at.astimezone(UTC).date())
                await conn.execute(f"CREATE DATABASE {BEFORE_DB}")
            log = EventLog(pool)
            async with bounded(600, "storage after"):
                after = await _after(log, bus, result)
            async with bounded(600, "storage before (old-shaped events)"):
                before = await _before(make_conninfo(pg.url, dbname=BEFORE_DB), bus, result)
            async with bounded(600, "VerdictWriter throughput"):
                direct = await _writer_rate(log, result)
            async with bounded(600, "ObservationConsumer throughput"):
                consumed = await _consumer_rate(log, bus, result)
        finally:
            await bus.close()
            await pool.close()
    return _rows(after, before, direct, consumed)


def _rows(after: dict[str, float], before: dict[str, float], direct: dict[str, float],
          consumed: dict[str, float]) -> list[Row]:  # fmt: skip
    pg_after = after["observation_bytes"] + after["state_bytes"]
    pg_before = before["events_bytes"] + before["history_bytes"]
    rows = [
        Row(BENCH, f"PostgreSQL bytes a stable probe (observation rows+index, probe_latest, verdicts; rounds {SETTLED + 1}-{ROUNDS})",
            pg_after, "B",
            "before (old-shaped events): events + status history", pg_before, "max", TARGET_BYTES,
            note=f"{after['rows_per_probe']:.0f} row a probe, 1 address"),
        Row(BENCH, "(diag) of which probe_observations (index incl.)", after["observation_bytes"], "B",
            note=f"index {after['index_bytes']:.1f} B a row"),
        Row(BENCH, "(diag) of which probe_latest + classifier_verdicts growth", after["state_bytes"], "B",
            note=f"{after['state_bytes_per_domain']:.0f} B a domain in all; {after['state_bytes_settling']:.0f} B a probe"
                 f" in rounds 2-{SETTLED}, while in-place updates fill the pages' free space"),
        Row(BENCH, "(diag) classifier_observations growth (serving state)", after["serving_bytes"], "B",
            note=f"written on change only; {after['serving_bytes_per_domain']:.0f} B a domain"),
        Row(BENCH, "(diag) WAL a stable probe", after["wal_bytes"], "B", "before (old-shaped events)",
            before["wal_bytes"]),
        Row(BENCH, "permanent events a stable domain adds per round (max over rounds 2+)", after["events_per_round"],
            "events", "before (old-shaped events): per probe", before["events_per_probe"], "max", 0.0,
            note=f"first round {after['first_round_events_per_domain']:.0f} a domain (the enable verdict)"),
        Row(BENCH, "JetStream bytes a stable probe: ProbeObserved message", after["stream_bytes"], "B",
            "before (old-shaped events): event stream bytes a probe", before["stream_bytes"],
            note=f"{after['message_json']:.0f} B of JSON; before {before['stream_bytes_per_msg']:.0f} B a message, 2 a probe"),
        Row(BENCH, "(diag) before (old-shaped events): bytes in events a probe (index incl.)", before["events_bytes"],
            "B", note=f"{before['events_bytes_per_event']:.0f} B an event"),
        Row(BENCH, "(diag) before (old-shaped events): classifier_status_history a probe", before["history_bytes"], "B"),
        Row(BENCH, "(diag) before (old-shaped events): ProbeCompleted data (JSON text)", before["probe_json"], "B",
            note=f"{before['probe_stored']:.0f} B as stored jsonb"),
        Row(BENCH, "(diag) before (old-shaped events): DomainClassified data (JSON text)", before["classified_json"],
            "B", note=f"{before['classified_stored']:.0f} B as stored jsonb"),
        Row(BENCH, "classifier: VerdictWriter, stable observations, batches of 512", direct["rate"], "obs/s",
            "bare SQL of each batch (lock, COPY, 2 upserts)", direct["bare_rate"], "min", TARGET_RATE),
        Row(BENCH, "(diag) classifier: VerdictWriter, client CPU an observation", direct["cpu_us"], "us",
            "bare SQL of each batch, client CPU", direct["bare_cpu_us"],
            note=f"one core of it alone: {1e6 / direct['cpu_us']:,.0f} obs/s; PostgreSQL's CPU apart"),
        Row(BENCH, "(diag) classifier: VerdictWriter, first observations (verdicts appended)", direct["first_rate"],
            "obs/s"),
        Row(BENCH, "classifier: ObservationConsumer+VerdictWriter via JetStream", consumed["rate"], "obs/s",
            "same consumer, no-op handler", consumed["floor_rate"], "min", TARGET_RATE),
        Row(BENCH, "(diag) classifier via JetStream: client CPU an observation", consumed["cpu_us"], "us",
            "same consumer, no-op handler", consumed["floor_cpu_us"]),
        Row(BENCH, "(diag) observation_stream.publish, pipelined batches of 500", consumed["publish_rate"], "obs/s"),
    ]  # fmt: skip
    save(BENCH, rows, {"domains": DOMAINS, "rounds": ROUNDS, "settled": SETTLED, "before_rounds": BEFORE_ROUNDS, "rate_domains": RATE_DOMAINS,
                       "rate_rounds": RATE_ROUNDS, "after": after, "before": before, "writer": direct,
                       "consumer": consumed})  # fmt: skip
    return rows


if __name__ == "__main__":
    cli(BENCH, run)
