"""Benchmarks 1 and 4: the projection catching up on a pre-loaded log (1..n instances), next to a
bare consumer reading the same topics.

Measured: from the first applied batch until the offsets stored in PostgreSQL equal the end
offsets of every event partition (``events_per_s``); from the process start (import, group join,
positioning) too (``events_per_s_from_start``). Afterwards the dedup table must hold exactly the
distinct events of the log (``verified``): duplicates counted once, nothing lost.
"""

from __future__ import annotations

import asyncio
import sys
import time
from typing import Any

import asyncpg

from bench.env import BenchEnv, isolated
from bench.kafka_tools import (
    TUNED_MAX_RECORDS,
    TUNED_PARTITION_FETCH_BYTES,
    Offsets,
    end_offsets,
    preload,
    raw_consume,
)
from bench.machine import CpuSample, cpu_between, cpu_sample
from bench.workload import EventLog
from harness.process import PROJECTION_APP

PROGRESS_EVERY_S = 0.1


async def projection_catchup(
    env: BenchEnv,
    *,
    dsn: str,
    group: str,
    instances: int,
    ends: Offsets,
    expected_unique: int,
    extra_env: dict[str, str],
    timeout_s: float = 3600,
) -> dict[str, Any]:
    """Start ``instances`` projection processes in one group on an empty database; time them
    until caught up; stop them; check the dedup table."""
    total = sum(ends.values())
    ps = [
        env.service(
            f"projection-{group}-{i}",
            PROJECTION_APP,
            dsn,
            DCR_PROJECTION_GROUP_ID=group,
            **extra_env,
        )
        for i in range(instances)
    ]
    conn = await asyncpg.connect(dsn)
    try:
        started = time.perf_counter()
        for p in ps:
            p.start()
        first: tuple[float, int] | None = None
        cpu0 = None
        pg_pids: list[int] = []
        samples: list[tuple[float, int]] = []
        applied = 0
        while True:
            for p in ps:
                p.check_alive()
            rows = await conn.fetch(
                "SELECT topic, partition, next_offset FROM projection_offsets "
                "WHERE consumer_group = $1",
                group,
            )
            now = time.perf_counter()
            stored = {(r["topic"], r["partition"]): int(r["next_offset"]) for r in rows}
            applied = sum(min(stored.get(tp, 0), end) for tp, end in ends.items())
            if first is None and applied > 0:
                first = (now, applied)
                # the projection's own database sessions (their server processes' CPU)
                pg_pids = [
                    int(r["pid"])
                    for r in await conn.fetch(
                        "SELECT pid FROM pg_stat_activity "
                        "WHERE datname = current_database() AND pid <> pg_backend_pid()"
                    )
                ]
                cpu0 = cpu_sample([p.pid for p in ps] + pg_pids)
            if not samples or now - samples[-1][0] - started >= 1.0 or applied >= total:
                samples.append((round(now - started, 2), applied))
            if applied >= total:
                break
            if now - started > timeout_s:
                raise TimeoutError(f"not caught up after {timeout_s}s: {applied}/{total}")
            await asyncio.sleep(PROGRESS_EVERY_S)  # sampling interval of the progress
        done = time.perf_counter()
        cpu1 = cpu_sample([p.pid for p in ps] + pg_pids)
        unique = int(await conn.fetchval("SELECT count(*) FROM projection_events") or 0)
    finally:
        for p in ps:
            p.terminate()
        await conn.close()
    assert first is not None and cpu0 is not None
    steady_s = max(done - first[0], 1e-9)
    from_start = total / (done - started)
    # From the first applied batch on (process start, group join and positioning excluded);
    # a log applied in one batch has no such interval: then from the start.
    steady = (total - first[1]) / steady_s if total > first[1] else from_start
    cpu = cpu_between(cpu0, cpu1)
    cores = cpu["process_cores"]
    steady_records = max(total - first[1], 1)
    return {
        "instances": instances,
        "records": total,
        "seconds": round(steady_s, 2),
        "seconds_from_start": round(done - started, 2),
        "events_per_s": round(steady, 1),
        "events_per_s_from_start": round(from_start, 1),
        "first_progress": {"seconds": round(first[0] - started, 2), "records": first[1]},
        "projection_cores": round(sum(cores[str(p.pid)] for p in ps), 2),
        # CPU of PostgreSQL's server processes of the projection's sessions (Python vs SQL)
        "postgres_cores": round(sum(cores[str(pid)] for pid in pg_pids), 2),
        # CPU seconds per event over the same interval, unrounded (the cores are rounded)
        "projection_cpu_us_per_event": _us_per_event(
            cpu0, cpu1, [p.pid for p in ps], steady_records
        ),
        "postgres_cpu_us_per_event": _us_per_event(cpu0, cpu1, pg_pids, steady_records),
        "machine_busy_share": cpu["machine_busy_share"],
        "verified": unique == expected_unique,
        "dedup_rows": unique,
        "expected_unique_events": expected_unique,
        "progress": samples,
    }


def _us_per_event(a: CpuSample, b: CpuSample, pids: list[int], records: int) -> float:
    """CPU microseconds the processes ``pids`` spent per record between two samples."""
    seconds = sum(b.proc_s.get(pid, 0.0) - a.proc_s.get(pid, 0.0) for pid in pids)
    return round(seconds / records * 1e6, 1)


async def load_log(
    env: BenchEnv, events: int, days: float, resend_after: int = 0
) -> tuple[EventLog, Offsets, float]:
    """Pre-load the benchmark log (:class:`EventLog`, seed 1; ``resend_after``: where its
    duplicates repeat from) into ``env``'s topics; (the log, end offsets, seconds taken)."""
    log = EventLog(env.city, n=events, days=days, seed=1, resend_after=resend_after)
    print(f"bench: pre-loading {events} events into {env.prefix}* (setup)", file=sys.stderr)
    n, seconds = await preload(env.bootstrap, env.prefix, log)
    ends = await end_offsets(env.bootstrap, env.prefix)
    if sum(ends.values()) != n:
        raise RuntimeError(f"pre-loaded {n} records but the topics hold {sum(ends.values())}")
    print(f"bench: pre-load done in {seconds:.1f} s ({n / seconds:.0f}/s)", file=sys.stderr)
    return log, ends, seconds


async def catchup(
    *,
    events: int,
    days: float,
    facilities: int,
    raw_max_records: int,
    projection_env: dict[str, str],
    keep_logs: bool = False,
) -> dict[str, Any]:
    async with isolated("catchup", facilities, keep_logs) as env:
        log, ends, preload_s = await load_log(env, events, days)
        print("bench: bare consumer (baseline)", file=sys.stderr)
        raw = await raw_consume(env.bootstrap, env.prefix, ends, raw_max_records)
        tuned = await raw_consume(
            env.bootstrap, env.prefix, ends, TUNED_MAX_RECORDS, TUNED_PARTITION_FETCH_BYTES
        )
        print(
            f"bench: bare consumer {raw.rate:.0f}/s (tuned {tuned.rate:.0f}/s); "
            "projection catch-up",
            file=sys.stderr,
        )
        proj = await projection_catchup(
            env,
            dsn=env.dsn,
            group="dcr-projection",
            instances=1,
            ends=ends,
            expected_unique=log.unique,
            extra_env=projection_env,
        )
        print(f"bench: projection {proj['events_per_s']:.0f}/s", file=sys.stderr)
    return {
        "params": {
            "events": events,
            "days": days,
            "facilities": facilities,
            "districts": len(env.city.districts),
            "partitions_per_topic": len(ends) // 4,
            "duplicates": log.duplicates,
            "raw_max_records": raw_max_records,
            "projection_env": projection_env,
        },
        "preload": {"records": sum(ends.values()), "seconds": round(preload_s, 2)},
        "raw_consumer": {
            "records": raw.records,
            "seconds": round(raw.seconds, 2),
            "events_per_s": round(raw.rate, 1),
        },
        "raw_consumer_tuned": {
            "max_records": TUNED_MAX_RECORDS,
            "max_partition_fetch_bytes": TUNED_PARTITION_FETCH_BYTES,
            "records": tuned.records,
            "seconds": round(tuned.seconds, 2),
            "events_per_s": round(tuned.rate, 1),
        },
        "projection": proj,
        "ratio": round(proj["events_per_s"] / raw.rate, 3) if raw.rate else 0.0,
    }


async def scale(
    *,
    events: int,
    days: float,
    facilities: int,
    instances: list[int],
    projection_env: dict[str, str],
    keep_logs: bool = False,
) -> dict[str, Any]:
    runs: list[dict[str, Any]] = []
    async with isolated("scale", facilities, keep_logs) as env:
        log, ends, _ = await load_log(env, events, days)
        for k in instances:
            print(f"bench: catch-up with {k} instance(s)", file=sys.stderr)
            dsn = await env.new_database(f"k{k}")
            run = await projection_catchup(
                env,
                dsn=dsn,
                group=f"bench-scale-{k}",
                instances=k,
                ends=ends,
                expected_unique=log.unique,
                extra_env=projection_env,
            )
            print(f"bench: {k} instance(s): {run['events_per_s']:.0f}/s", file=sys.stderr)
            runs.append(run)
    one = runs[0]["events_per_s"] if runs else 0.0
    for run in runs:
        run["speedup"] = round(run["events_per_s"] / one, 2) if one else 0.0
    return {
        "params": {
            "events": events,
            "days": days,
            "facilities": facilities,
            "instances": instances,
            "duplicates": log.duplicates,
            "projection_env": projection_env,
        },
        "runs": runs,
    }
