"""``python -m bench``: run the benchmarks, write ``<results>/<name>.json`` and ``REPORT.md``.

Needs the Kafka and PostgreSQL of ``deploy/scripts`` (``make bench`` starts them). Every
benchmark creates and removes its own topics and database. Measure on a quiet machine: the load
average is recorded with every result (``--quiet-wait`` waits for it to drop first).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shlex
import sys
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench import report
from bench.alerts import alerts
from bench.catchup import catchup, scale
from bench.freshness import city_scale_rate, freshness
from bench.ingest import ingest
from bench.machine import load, machine, wait_quiet
from shared.settings import REPO_ROOT

DEFAULT_RESULTS = REPO_ROOT / "bench" / "results"
NOTES = REPO_ROOT / "bench" / "NOTES.md"


def _ints(text: str) -> list[int]:
    return [int(x) for x in text.split(",") if x.strip()]


def _env_pair(text: str) -> tuple[str, str]:
    key, sep, value = text.partition("=")
    if not sep or not key.startswith("DCR_"):
        raise argparse.ArgumentTypeError("expected DCR_NAME=value")
    return key, value


def parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(
        prog="python -m bench", description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    ap.add_argument(
        "--only",
        default=",".join(report.BENCHMARKS),
        help="comma-separated subset of: " + ", ".join(report.BENCHMARKS) + " (default: all)",
    )
    ap.add_argument("--results-dir", type=Path, default=DEFAULT_RESULTS)
    ap.add_argument(
        "--report-only",
        action="store_true",
        help="run nothing: rewrite REPORT.md from the JSON results (and bench/NOTES.md)",
    )
    ap.add_argument("--facilities", type=int, default=50, help="rooms in the benchmark city")
    g = ap.add_argument_group("catch-up and scale")
    g.add_argument("--events", type=int, default=1_000_000, help="events pre-loaded (catch-up)")
    g.add_argument("--days", type=float, default=30.0, help="days the pre-loaded log spans")
    g.add_argument("--raw-max-records", type=int, default=10_000, help="bare consumer getmany")
    g.add_argument("--scale-events", type=int, default=None, help="default: --events")
    g.add_argument("--scale-instances", type=_ints, default=[1, 2, 3])
    g.add_argument(
        "--projection-env",
        type=_env_pair,
        action="append",
        default=[],
        metavar="DCR_NAME=VALUE",
        help="setting for the projection processes (e.g. DCR_PROJECTION_BATCH_MAX_RECORDS=500)",
    )
    g = ap.add_argument_group("ingest")
    g.add_argument("--ingest-requests", type=int, default=5000)
    g.add_argument("--concurrency", type=int, default=32)
    g.add_argument("--rate", type=float, default=200.0, help="fixed-rate run, requests/s")
    g.add_argument("--rate-seconds", type=float, default=30.0)
    g = ap.add_argument_group("freshness")
    g.add_argument(
        "--freshness-rates",
        default="city,200",
        help="reports/s, comma-separated; 'city' = 50 rooms at 10x peak (see bench/freshness.py)",
    )
    g.add_argument("--freshness-seconds", type=float, default=60.0)
    g.add_argument("--freshness-warmup", type=float, default=5.0)
    g.add_argument("--poll-ms", type=float, default=5.0, help="visibility poll interval")
    g = ap.add_argument_group("drug alerts")
    g.add_argument("--alert-clusters", type=int, default=200, help="overdose clusters posted")
    g.add_argument("--alert-rate", type=float, default=2.0, help="clusters per second")
    g = ap.add_argument_group("machine")
    g.add_argument("--quiet-wait", type=float, default=0.0, help="max seconds to wait for quiet")
    g.add_argument("--quiet-load", type=float, default=1.0, help="load1 counted as quiet")
    g.add_argument("--keep-logs", action="store_true", help="keep .state/bench/<run>/ logs")
    return ap


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    only = [b.strip() for b in args.only.split(",") if b.strip()]
    unknown = set(only) - set(report.BENCHMARKS)
    if unknown:
        print(f"unknown benchmark(s): {sorted(unknown)}", file=sys.stderr)
        return 2
    command = "python -m bench " + shlex.join(sys.argv[1:] if argv is None else argv)
    args.results_dir.mkdir(parents=True, exist_ok=True)
    if not args.report_only:
        asyncio.run(_run(args, only, command.strip()))
    text = report.render(
        report.load_results(args.results_dir), NOTES.read_text() if NOTES.exists() else ""
    )
    (args.results_dir / "REPORT.md").write_text(text)
    print(text)
    return 0


async def _run(args: argparse.Namespace, only: list[str], command: str) -> None:
    projection_env = dict(args.projection_env)
    rates = [
        city_scale_rate(args.facilities) if r.strip() == "city" else float(r)
        for r in args.freshness_rates.split(",")
        if r.strip()
    ]
    jobs: dict[str, Callable[[], Awaitable[dict[str, Any]]]] = {
        "catchup": lambda: catchup(
            events=args.events,
            days=args.days,
            facilities=args.facilities,
            raw_max_records=args.raw_max_records,
            projection_env=projection_env,
            keep_logs=args.keep_logs,
        ),
        "ingest": lambda: ingest(
            requests=args.ingest_requests,
            concurrency=args.concurrency,
            rate=args.rate,
            rate_seconds=args.rate_seconds,
            facilities=args.facilities,
            keep_logs=args.keep_logs,
        ),
        "freshness": lambda: freshness(
            rates=rates,
            seconds=args.freshness_seconds,
            warmup_s=args.freshness_warmup,
            poll_ms=args.poll_ms,
            facilities=args.facilities,
            projection_env=projection_env,
            keep_logs=args.keep_logs,
        ),
        "scale": lambda: scale(
            events=args.scale_events or args.events,
            days=args.days,
            facilities=args.facilities,
            instances=args.scale_instances,
            projection_env=projection_env,
            keep_logs=args.keep_logs,
        ),
        "alerts": lambda: alerts(
            clusters=args.alert_clusters, rate=args.alert_rate, keep_logs=args.keep_logs
        ),
    }
    info = machine()
    for name in report.BENCHMARKS:
        if name not in only:
            continue
        before = await wait_quiet(args.quiet_wait, args.quiet_load)
        print(f"bench: {name} (load1 {before['load1']})", file=sys.stderr)
        started_at = datetime.now(UTC).replace(microsecond=0).isoformat()
        t0 = time.monotonic()
        results = await jobs[name]()
        doc = {
            "benchmark": name,
            "started_at": started_at,
            "duration_s": round(time.monotonic() - t0, 1),
            "command": command,
            "machine": info,
            "load_before": before,
            "load_after": load(),
            "results": results,
        }
        path = args.results_dir / f"{name}.json"
        path.write_text(json.dumps(doc, indent=2, default=str) + "\n")
        print(f"bench: wrote {path}", file=sys.stderr)
