"""``python -m bench.profile_catchup``: where the projection's CPU goes per event (issue 18).

Pre-loads the catch-up benchmark's log (:func:`bench.catchup.load_log`, the same events) into an
isolated environment, then replays it ``--runs`` times in this process through the rebuild
(:func:`services.projection.rebuild.rebuild`: the live service's :class:`Projector` loop, on
uvloop with the service's GC tuning), each on an emptied read model. The first replay is timed
without a profiler (CPU seconds of this process per event, wall rate); the others run under
cProfile, whose top functions (self and cumulative time, in microseconds per event) are printed
and saved with ``--out`` (pstats file beside it, for ``python -m pstats``).

cProfile slows Python down about 1.5-2x, unevenly (many small calls pay most): read its figures
as shares, and the unprofiled run for the absolute cost.

``--timeline`` also records, in the unprofiled replay, when each batch was prepared (fetch,
decode, project: :meth:`Projector.fetch`) and when its transaction ran
(:meth:`Projector._apply`), and reports their mean durations per batch: which of the two bounds
the pipelined loop (the next batch is prepared while the current one's transaction runs). It
also samples, every second, the cores used by this process and by PostgreSQL's server processes
of the replay's sessions (``cpu_per_second``), with the share of seconds in which this process
was saturated (its single event loop at >= 0.9 cores: Python, not PostgreSQL, bounds the rate
then), and the event loop's stalls (``loop_stalls``: a task sleeping 1 ms at a time records how
late it wakes, when more than 10 ms: time the loop ran Python without yielding, during which an
answer of the transaction in flight waits; the watcher costs ~1-2 % of a core).

``--resend-after N`` makes the log's duplicates resends of the record N before instead of
repeats of the one just before (:attr:`bench.workload.EventLog.resend_after`): some then cross
a batch boundary, as a room's resend after a delay does.

Every unprofiled replay also reports the garbage collector's share (``gc``: collections per
generation and the CPU microseconds per event they took, timed by ``gc.callbacks``).
``--gc-young N`` replaces the service's youngest-generation threshold
(:data:`services.projection.gc_policy.GC_YOUNG_THRESHOLD`) for the run, to compare policies.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import gc
import io
import json
import os
import pstats
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

import asyncpg
import uvloop
from prometheus_client import REGISTRY
from pydantic import SecretStr

from bench.catchup import load_log
from bench.env import BenchEnv, isolated
from bench.machine import CpuSample, cpu_sample, load, machine
from services.projection import gc_policy
from services.projection.bootstrap import ProjectionConfig
from services.projection.consumer import Projector
from services.projection.rebuild import rebuild
from services.projection.settings import ProjectionSettings
from shared.bootstrap import Platform
from shared.settings import CitySettings, DatabaseSettings


def _config(env: BenchEnv) -> ProjectionConfig:
    """The rebuild's settings in the benchmark's isolated environment."""
    return ProjectionConfig(
        Platform(
            kafka=env.kafka.model_copy(update={"topic_prefix": env.prefix}),
            db=DatabaseSettings(dsn=SecretStr(env.dsn)),
            city_settings=CitySettings(file=env.city_file),
        ),
        ProjectionSettings(),
    )


def _top(stats: pstats.Stats, key: str, n: int, events: int) -> list[dict[str, Any]]:
    stats.sort_stats(key)
    out: list[dict[str, Any]] = []
    for func in stats.fcn_list[:n]:  # type: ignore[attr-defined]
        _, nc, tt, ct, _ = stats.stats[func]  # type: ignore[attr-defined]
        filename, line, name = func
        out.append(
            {
                "function": f"{_short(filename)}:{line}({name})",
                "calls": nc,
                "self_us_per_event": round(tt / events * 1e6, 3),
                "cum_us_per_event": round(ct / events * 1e6, 3),
            }
        )
    return out


def _short(filename: str) -> str:
    for marker in ("site-packages/", "/i18c/", "/work/"):
        if marker in filename:
            return filename.split(marker, 1)[1]
    return filename


@contextmanager
def _batch_timeline() -> Iterator[list[tuple[str, float, float, int]]]:
    """Record (stage, start, end, records) of every batch's preparation ("prepare") and
    transaction ("apply") while the block runs (the Projector's methods are wrapped, then
    restored)."""
    spans: list[tuple[str, float, float, int]] = []
    fetch, apply = Projector.fetch, Projector._apply

    async def timed_fetch(self: Projector, timeout_ms: int, max_records: int) -> Any:
        t = time.perf_counter()
        prepared = await fetch(self, timeout_ms, max_records)
        n = 0 if prepared is None else len(prepared.decoded)
        spans.append(("prepare", t, time.perf_counter(), n))
        return prepared

    async def timed_apply(self: Projector, batch: Any) -> int:
        t = time.perf_counter()
        n = await apply(self, batch)
        spans.append(("apply", t, time.perf_counter(), n))
        return n

    Projector.fetch, Projector._apply = timed_fetch, timed_apply  # type: ignore[method-assign]
    try:
        yield spans
    finally:
        Projector.fetch, Projector._apply = fetch, apply  # type: ignore[method-assign]


@contextmanager
def _gc_time() -> Iterator[dict[str, Any]]:
    """The collections the garbage collector runs while the block runs: how many per
    generation and the CPU seconds they took (``gc.callbacks``: start and stop of each)."""
    counts = [0, 0, 0]
    took = [0.0]
    started = [0.0]

    def callback(phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            started[0] = time.process_time()
        else:
            counts[info["generation"]] += 1
            took[0] += time.process_time() - started[0]

    out: dict[str, Any] = {}
    gc.callbacks.append(callback)
    try:
        yield out
    finally:
        gc.callbacks.remove(callback)
        out.update(collections=counts, seconds=round(took[0], 3))


def _timeline_summary(spans: list[tuple[str, float, float, int]]) -> dict[str, Any]:
    """Mean milliseconds per batch of each stage (batches with records only)."""
    out: dict[str, Any] = {}
    for stage in ("prepare", "apply"):
        ms = [(end - start) * 1000 for s, start, end, n in spans if s == stage and n > 0]
        out[f"{stage}_batches"] = len(ms)
        out[f"{stage}_ms_mean"] = round(sum(ms) / len(ms), 1) if ms else None
    return out


#: Cores at or above which the projection process counts as saturated (one event loop: 1 core).
SATURATED = 0.9


def _fallbacks() -> dict[str, float]:
    """This process's optimistic inserts that met a stored row so far (``store.claim_events``,
    ``store._visits``): batches that paid for the attempt and the ``ON CONFLICT`` statement."""
    return {
        name: REGISTRY.get_sample_value(f"dcr_projection_{name}_fallbacks_total") or 0.0
        for name in ("claim", "visit")
    }


#: A wake-up of :func:`_watch_loop` later than this is a stall of the event loop.
STALL_S = 0.01


async def _watch_loop(stop: asyncio.Event, stalls: list[float]) -> None:
    """Record how late each 1 ms sleep of this task wakes up, when later than :data:`STALL_S`:
    the time the event loop ran something else without yielding (a statement's answer waits
    that long for the transaction's coroutine)."""
    loop = asyncio.get_running_loop()
    while not stop.is_set():
        t = loop.time()
        await asyncio.sleep(0.001)  # sampling interval of the stall watcher
        late = loop.time() - t - 0.001
        if late > STALL_S:
            stalls.append(late)


def _stall_summary(stalls: list[float], seconds: float) -> dict[str, Any]:
    return {
        "threshold_ms": STALL_S * 1000,
        "count": len(stalls),
        "seconds": round(sum(stalls), 2),
        "share_of_wall": round(sum(stalls) / seconds, 3) if seconds else 0.0,
        "max_ms": round(max(stalls, default=0.0) * 1000, 1),
        "over_50ms": sum(1 for s in stalls if s > 0.05),
    }


async def _sample_cpu(dsn: str, stop: asyncio.Event, samples: list[list[float]]) -> None:
    """Until ``stop``: every second, append [seconds since the start, cores used by this process,
    cores used by the PostgreSQL server processes of the database's other sessions (the
    rebuild's)] over the second before (a session that appeared meanwhile counts from its
    next second), and this process's resident memory (MB) then."""
    conn = await asyncpg.connect(dsn)
    try:
        start = previous = None
        while not stop.is_set():
            pids = [
                r["pid"]
                for r in await conn.fetch(
                    "SELECT pid FROM pg_stat_activity "
                    "WHERE datname = current_database() AND pid <> pg_backend_pid()"
                )
            ]
            now: CpuSample = cpu_sample([os.getpid(), *pids])
            if previous is not None and start is not None:
                wall = max(now.at - previous.at, 1e-9)
                own = (now.proc_s[os.getpid()] - previous.proc_s[os.getpid()]) / wall
                server = sum(
                    now.proc_s[p] - previous.proc_s[p] for p in pids if p in previous.proc_s
                )
                samples.append(
                    [round(now.at - start, 1), round(own, 2), round(server / wall, 2), _rss_mb()]
                )
            start = now.at if start is None else start
            previous = now
            with suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=1.0)
    finally:
        await conn.close()


def _rss_mb() -> float:
    """This process's resident memory now, in MB (Linux: ``/proc/self/statm``)."""
    pages = int(Path("/proc/self/statm").read_text().split()[1])
    return round(pages * os.sysconf("SC_PAGE_SIZE") / 2**20, 1)


def _cpu_summary(samples: list[list[float]]) -> dict[str, Any]:
    """The per-second samples, the share of seconds in which the projection process was
    saturated (its one event loop at ~1 core: Python is the bound then) and its largest
    resident memory."""
    saturated = sum(1 for s in samples if s[1] >= SATURATED)
    return {
        "columns": ["seconds", "projection_cores", "postgres_cores", "projection_rss_mb"],
        "samples": samples,
        "projection_rss_mb_max": max((s[3] for s in samples), default=None),
        "projection_saturated_share": round(saturated / len(samples), 3) if samples else None,
    }


async def _run(args: argparse.Namespace) -> dict[str, Any]:
    async with isolated("profile", args.facilities) as env:
        _, ends, _ = await load_log(env, args.events, args.days, args.resend_after)
        config = _config(env)
        total = sum(ends.values())
        plain: list[dict[str, Any]] = []
        profiled: list[pstats.Stats] = []
        for i in range(args.runs):
            profile = i > 0
            prof = cProfile.Profile() if profile else None
            cpu0, wall0 = time.process_time(), time.perf_counter()
            if prof is not None:
                prof.enable()
            stop, samples = asyncio.Event(), list[list[float]]()
            sampler = (
                asyncio.create_task(_sample_cpu(env.dsn, stop, samples))
                if args.timeline and not profile
                else None
            )
            stalls: list[float] = []
            watcher = (
                asyncio.create_task(_watch_loop(stop, stalls))
                if args.timeline and not profile
                else None
            )
            with _batch_timeline() as spans, _gc_time() as collected:
                n = await rebuild(out=io.StringIO(), config=config)
            stop.set()
            for task in (sampler, watcher):
                if task is not None:
                    await task
            if prof is not None:
                prof.disable()
                profiled.append(pstats.Stats(prof))
            cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
            assert n == total, (n, total)
            row: dict[str, Any] = {
                "profiled": profile,
                "seconds": round(wall, 2),
                "events_per_s": round(n / wall, 1),
                "cpu_us_per_event": round(cpu / n * 1e6, 2),
            }
            print(f"profile: replay {i + 1}: {row}", file=sys.stderr)
            if not profile:
                row["fallbacks"] = _fallbacks()
                row["gc"] = {
                    **collected,
                    "us_per_event": round(collected["seconds"] / n * 1e6, 2),
                    "thresholds": list(gc.get_threshold()),
                }
                if args.timeline:
                    row["timeline"] = _timeline_summary(spans)
                    row["cpu_per_second"] = _cpu_summary(samples)
                    row["loop_stalls"] = _stall_summary(stalls, wall)
                plain.append(row)
    result: dict[str, Any] = {"events": total, "unprofiled": plain}
    if profiled:
        stats = profiled[0]
        for extra in profiled[1:]:
            stats.add(extra)
        counted = total * len(profiled)
        result["profiled_top_self"] = _top(stats, "tottime", args.top, counted)
        result["profiled_top_cumulative"] = _top(stats, "cumulative", args.top, counted)
        if args.out is not None:
            stats.dump_stats(str(args.out.with_suffix(".pstats")))
    return result


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.profile_catchup", description=__doc__)
    ap.add_argument("--events", type=int, default=100_000)
    ap.add_argument("--days", type=float, default=30.0)
    ap.add_argument("--facilities", type=int, default=50)
    ap.add_argument("--runs", type=int, default=2, help="replays: the first unprofiled")
    ap.add_argument(
        "--resend-after",
        type=int,
        default=0,
        help="duplicates repeat the record N before (a resend; default 0: the one just before)",
    )
    ap.add_argument("--top", type=int, default=40)
    ap.add_argument(
        "--timeline", action="store_true", help="mean prepare / transaction time per batch"
    )
    ap.add_argument("--out", type=Path, default=None, help="JSON result (and .pstats beside it)")
    ap.add_argument(
        "--gc-young",
        type=int,
        default=None,
        help="youngest-generation GC threshold instead of the service's",
    )
    args = ap.parse_args(argv)
    before = load()
    gc_policy.tune_gc(args.gc_young or gc_policy.GC_YOUNG_THRESHOLD)
    result = uvloop.run(_run(args))
    doc = {
        "machine": machine(),
        "load_before": before,
        "load_after": load(),
        "resend_after": args.resend_after,
        **result,
    }
    text = json.dumps(doc, indent=2)
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text + "\n")
    for key in ("profiled_top_self", "profiled_top_cumulative"):
        print(f"\n{key} (us per event)")
        for row in result.get(key, []):
            print(
                f"  {row['self_us_per_event']:8.2f} self {row['cum_us_per_event']:8.2f} cum "
                f"{row['calls']:>9} calls  {row['function']}"
            )
    print(json.dumps(result["unprofiled"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
