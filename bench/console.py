"""The console's domain list with 100,000 domains: the first page and a filtered search.

Run alone: `.venv/bin/python -m bench.console` (from the repo root; imports tests.support).

The inventory and the console run in-process (`running_stack`), against freshly started
PostgreSQL (durable) and NATS. The 100,000 rows are written straight into the table the
inventory's domain view keeps (`inventory_domains`: 90% SECURE, 10% ABNORMAL). A signed-in
client GETs the full page, sequentially: the time is the request's, on loopback, through
uvicorn, Starlette, the gRPC ListDomains call, the query and the template. The reference, in
the same run, is the bare query ListDomains runs, on its own connection.
"""

from __future__ import annotations

import ipaddress
import time
import uuid
from typing import Any

import httpx
import psycopg

from bench._common import Row, bounded, cli, fresh_servers, median, percentile, save
from certwatch.platform.config import Settings

BENCH = "console"
DOMAINS = 100_000
REQUESTS = 200
WARMUP = 10
P99_TARGET_S = 0.150
PASSWORD = "bench password, long enough"
QUERIES = {"first page": "", "search + status filter": "q=site12&status=ABNORMAL"}

_SEED = """
INSERT INTO inventory_domains (domain_id, account_id, host, host_unicode, port, enabled, generation,
    status, primary_cause, causes, brand, valid_from, valid_to, days_left, added_at, first_enabled_at,
    period_start, service_ends_on, last_checked_at)
SELECT md5('c' || n)::uuid, %(account)s, 'site' || n || '.bench.test', 'site' || n || '.bench.test', 443,
       true, 1, CASE WHEN n %% 10 = 0 THEN 'ABNORMAL' ELSE 'SECURE' END,
       CASE WHEN n %% 10 = 0 THEN 'NETWORK_CONNECTION_FAILURE' END,
       CASE WHEN n %% 10 = 0 THEN '{NETWORK_CONNECTION_FAILURE}'::text[] ELSE '{}' END,
       'Bench CA', now() - interval '10 days', now() + (n %% 90) * interval '1 day', n %% 90,
       now(), now(), current_date, current_date + 365, now()
FROM generate_series(1, %(n)s) n
"""

# What ListDomains runs (inventory.domain_use_cases.Domains.page), the same columns.
_BARE = {
    "first page": (
        "SELECT domain_id, host, port, enabled, status, primary_cause, causes, brand, valid_from, valid_to,"
        " days_left - (current_date - last_checked_at::date), contact_ids, added_at, first_enabled_at,"
        " service_ends_on, last_checked_at, recommended_action, enabled AND status <> 'ENABLE_FAILED'"
        " AND last_checked_at < now() - make_interval(secs => 600) FROM inventory_domains"
        " WHERE account_id = %s ORDER BY host, domain_id LIMIT 51"
    ),
}
_BARE["search + status filter"] = _BARE["first page"].replace(
    "WHERE account_id = %s",
    "WHERE account_id = %s AND status = 'ABNORMAL' AND (strpos(host, 'site12') > 0"
    " OR strpos(coalesce(host_unicode, host), 'site12') > 0)",
)


async def _timed_get(client: httpx.AsyncClient, url: str, cookie: dict[str, str]) -> list[float]:
    out = []
    for n in range(WARMUP + REQUESTS):
        t0 = time.perf_counter()
        answer = await client.get(url, headers=cookie)
        elapsed = time.perf_counter() - t0
        if answer.status_code != 200 or "row-" not in answer.text:
            raise RuntimeError(f"{url}: {answer.status_code} {answer.text[:300]}")
        if n >= WARMUP:
            out.append(elapsed)
    return out


async def _timed_bare(url: str, sql: str, account: uuid.UUID) -> list[float]:
    out = []
    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
        for n in range(WARMUP + REQUESTS):
            t0 = time.perf_counter()
            rows = await (await conn.execute(sql, (account,))).fetchall()
            if n >= WARMUP:
                out.append(time.perf_counter() - t0)
            assert rows
    return out


async def run() -> list[Row]:
    from certwatch.console import users
    from tests.support.stack import running_stack

    got: dict[str, Any] = {}
    with fresh_servers(BENCH) as (pg, nats):
        settings = Settings(database_url=pg.url, nats_url=nats.url, log_format="text", log_level="WARNING",
                            allow_networks=(ipaddress.ip_network("127.0.0.0/8"),), shutdown_grace_s=3)  # fmt: skip
        async with (
            bounded(900, "the console bench"),
            running_stack(settings, ("inventory", "console")) as stack,
        ):
            account = uuid.UUID(stack.account_id)
            runtime = stack.services["console"].runtime
            assert runtime is not None
            async with runtime.pool.connection() as conn:
                await conn.execute(_SEED, {"account": account, "n": DOMAINS})
                await conn.execute("ANALYZE inventory_domains")
            await users.add_user(runtime.pool, account, "bench", PASSWORD)
            base = f"http://127.0.0.1:{stack.services['console'].port}"
            async with httpx.AsyncClient(base_url=base, timeout=30) as client:
                signed = await client.post("/signin", data={"username": "bench", "password": PASSWORD})
                cookie = {"cookie": f"certwatch_session={signed.cookies['certwatch_session']}"}
                for name, query in QUERIES.items():
                    got[name] = await _timed_get(client, f"/domains?{query}", cookie)
                    got[f"bare {name}"] = await _timed_bare(pg.url, _BARE[name], account)
    rows = []
    for name in QUERIES:
        page, bare = got[name], got[f"bare {name}"]
        rows += [
            Row(BENCH, f"domain list, {DOMAINS:,} domains, {name}, p50", median(page), "s", "bare query p50",
                median(bare), note=f"{len(page)} requests, sequential"),
            Row(BENCH, f"domain list, {DOMAINS:,} domains, {name}, p99", percentile(page, 99), "s",
                "bare query p99", percentile(bare, 99), "max", P99_TARGET_S),
        ]  # fmt: skip
    save(BENCH, rows, {"requests": REQUESTS, "latencies_s": got})
    return rows


if __name__ == "__main__":
    cli(BENCH, run)
