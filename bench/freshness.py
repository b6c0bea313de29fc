"""Benchmark 3: freshness, the time from intake's 202 to the event being visible in the read model.

intake and the projection run as separate processes (one each, as deployed) on the benchmark city
(50 facilities by default). Clients post intake reports in an open loop at a steady rate: visit
starts (45 %), ends of earlier visits (40 %), refusals, referrals and on-site services (5 % each).
Clients use the minimal keep-alive client of :mod:`bench.http_raw` (httpx would take CPU from the
services measured). Visibility is observed, not instrumented: a poller asks PostgreSQL every
``poll_ms`` which of the accepted event ids are in ``projection_events`` (the dedup row is written
in the same transaction as the read-model change and the offsets, so a committed row means the
event is visible through the read API). Freshness of an event = the end of the first poll that
saw it - when its 202 arrived; the poll interval bounds the error (it can only overstate).

"City-scale" rate: the simulator's busiest day is 400 visits per facility (its upper clamp) with
the peak hour carrying 1.6/20.94 of the day (its intraday curve): 30.6 visits per hour. At about 3
reports per visit (start, end and one more: supplies, a service, a referral or a refusal) that is
0.0255 reports/s per facility at peak; 50 facilities at 10x peak = 12.7 reports/s.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import sys
import time
import uuid
from collections import deque
from datetime import UTC, datetime
from typing import Any

import asyncpg

from bench.env import SCRAPER, BenchEnv, isolated
from bench.ingest import Client, raw_client
from bench.kafka_tools import open_loop
from bench.machine import cpu_between, cpu_sample
from bench.server_side import Buckets, phase_quantiles, scrape_buckets
from bench.stats import summarise
from harness.process import INTAKE_APP, PROJECTION_APP, ServiceProcess

PEAK_VISITS_PER_HOUR = 400 * 1.6 / 20.94
REPORTS_PER_VISIT = 3


def city_scale_rate(facilities: int = 50, factor: float = 10) -> float:
    """Reports per second of ``facilities`` rooms at ``factor`` x their peak hour."""
    return round(facilities * factor * PEAK_VISITS_PER_HOUR * REPORTS_PER_VISIT / 3600, 1)


#: What the projection measures itself (services/projection/metrics.py), reported per rate so a
#: freshness figure can be split into its batches: how many records each applied batch held
#: (bucket bounds) and how long its transaction took.
PROJECTION_HISTOGRAMS = {
    "projection_batch_records": "dcr_projection_batch_size_records",
    "projection_batch_apply": "dcr_projection_batch_apply_duration_seconds",
}


async def _scrape(proj: ServiceProcess, token: str) -> dict[str, Buckets]:
    return {
        k: await scrape_buckets(proj.url, token, m, {}) for k, m in PROJECTION_HISTOGRAMS.items()
    }


def _inside(before: dict[str, Buckets], after: dict[str, Buckets]) -> dict[str, Any]:
    """The projection's batches between two scrapes: count and p50/p99 (bucket bounds)."""
    sizes, applies = PROJECTION_HISTOGRAMS
    return {
        sizes: phase_quantiles(before[sizes], after[sizes], (0.5, 0.99), "records", 1),
        applies: phase_quantiles(before[applies], after[applies], (0.5, 0.99)),
    }


class Load:
    """The reports: which facility, what kind, and the visits open per facility."""

    def __init__(self, env: BenchEnv, client: Client, seed: int = 3) -> None:
        self.env = env
        self.client = client
        self.rng = random.Random(seed)  # noqa: S311 - a workload, not a secret
        self.facilities = [f.id for f in env.city.facilities]
        self.open: dict[str, deque[str]] = {f: deque() for f in self.facilities}
        self.statuses: dict[int, int] = {}

    async def post(self, i: int) -> tuple[int, str | None]:
        fac = self.facilities[i % len(self.facilities)]
        now = datetime.now(UTC).isoformat()
        roll = self.rng.random()
        path, body = (
            "/v1/visits",
            {
                "facility_id": fac,
                "occurred_at": now,
                "client_code": f"C-{self.rng.randrange(400):04d}",
                "substances": ["heroin"],
                "route": "inject",
            },
        )
        if 0.45 <= roll < 0.85 and self.open[fac]:
            path, body = (
                "/v1/visits/end",
                {
                    "facility_id": fac,
                    "occurred_at": now,
                    "visit_id": self.open[fac].popleft(),
                },
            )
        elif 0.85 <= roll < 0.9:
            path, body = (
                "/v1/refusals",
                {"facility_id": fac, "occurred_at": now, "reason": "capacity"},
            )
        elif 0.9 <= roll < 0.95:
            path, body = (
                "/v1/referrals",
                {
                    "facility_id": fac,
                    "occurred_at": now,
                    "referral_to": "housing",
                },
            )
        elif roll >= 0.95:
            path, body = (
                "/v1/services",
                {
                    "facility_id": fac,
                    "occurred_at": now,
                    "service": "wound_care",
                },
            )
        headers = {
            "Authorization": f"Bearer {self.env.tokens[fac]}",
            "Idempotency-Key": uuid.uuid4().hex,
        }
        status, doc = await self.client.post(path, body, headers)
        self.statuses[status] = self.statuses.get(status, 0) + 1
        if status != 202:
            return status, None
        if "visit_id" in doc:
            self.open[fac].append(doc["visit_id"])
        return status, str(doc["event_id"])


async def run_rate(
    load: Load,
    conn: asyncpg.Connection,
    *,
    rate: float,
    seconds: float,
    warmup_s: float,
    poll_ms: float,
    settle_s: float = 60,
) -> dict[str, Any]:
    accepted: dict[uuid.UUID, float] = {}
    visible: dict[uuid.UUID, float] = {}
    pending: set[uuid.UUID] = set()
    http_latencies: list[float] = []
    warmup_n = int(rate * warmup_s)
    load.statuses.clear()
    stop = asyncio.Event()

    async def one(i: int, scheduled: float) -> None:
        _, event_id = await load.post(i)
        done = time.perf_counter()
        if event_id is None or i < warmup_n:
            return
        eid = uuid.UUID(event_id)
        accepted[eid] = done
        pending.add(eid)
        http_latencies.append(done - scheduled)

    async def poller() -> None:
        while not (stop.is_set() and not pending):
            if pending:
                ids = list(pending)
                rows = await conn.fetch(
                    "SELECT id FROM projection_events WHERE id = ANY($1::uuid[])", ids
                )
                seen = time.perf_counter()
                for row in rows:
                    visible[row["id"]] = seen
                    pending.discard(row["id"])
            await asyncio.sleep(poll_ms / 1000)  # polling interval of the visibility probe

    poll_task = asyncio.create_task(poller())
    started = time.perf_counter()
    n = int(rate * (warmup_s + seconds))
    await open_loop(n, rate, one)
    load_s = time.perf_counter() - started
    stop.set()
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(poll_task, timeout=settle_s)
    freshness = [visible[e] - accepted[e] for e in visible if e in accepted]
    errors = sum(k for status, k in load.statuses.items() if status != 202)
    return {
        "rate_per_s": rate,
        "seconds": round(load_s, 1),
        "measured_events": len(accepted),
        "never_visible": len(accepted) - len(freshness),
        "errors": errors,
        "freshness": summarise(freshness, load_s),
        "http": summarise(http_latencies, load_s),
    }


async def freshness(
    *,
    rates: list[float],
    seconds: float,
    warmup_s: float,
    poll_ms: float,
    facilities: int,
    projection_env: dict[str, str],
    keep_logs: bool = False,
) -> dict[str, Any]:
    runs = []
    async with isolated("freshness", facilities, keep_logs) as env:
        proj = env.service("projection", PROJECTION_APP, **projection_env)
        intake = env.service("intake", INTAKE_APP)
        proj.start()
        intake.start()
        conn = await asyncpg.connect(env.dsn)
        try:
            await asyncio.gather(proj.wait_healthy(timeout=60), intake.wait_healthy(timeout=60))
            client = raw_client(intake.url)
            token = env.tokens[SCRAPER]
            try:
                load = Load(env, client)
                for rate in rates:
                    print(f"bench: freshness at {rate}/s for {seconds} s", file=sys.stderr)
                    pids = {"projection": proj.pid, "intake": intake.pid, "load": os.getpid()}
                    before, c0 = await _scrape(proj, token), cpu_sample(list(pids.values()))
                    run = await run_rate(
                        load, conn, rate=rate, seconds=seconds, warmup_s=warmup_s, poll_ms=poll_ms
                    )
                    cpu = cpu_between(c0, cpu_sample(list(pids.values())))
                    run |= _inside(before, await _scrape(proj, token))
                    run["cores"] = {
                        name: cpu["process_cores"][str(pid)] for name, pid in pids.items()
                    } | {"machine_busy_share": cpu["machine_busy_share"]}
                    print(
                        f"bench: freshness p50 {run['freshness']['p50_ms']} ms, "
                        f"p99 {run['freshness']['p99_ms']} ms",
                        file=sys.stderr,
                    )
                    runs.append(run)
                    proj.check_alive()
            finally:
                client.close()
        finally:
            await conn.close()
            intake.terminate()
            proj.terminate()
    return {
        "params": {
            "facilities": facilities,
            "rates_per_s": rates,
            "city_scale_rate_per_s": city_scale_rate(facilities),
            "seconds": seconds,
            "warmup_s": warmup_s,
            "poll_ms": poll_ms,
            "projection_env": projection_env,
        },
        "runs": runs,
    }
