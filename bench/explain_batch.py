"""``python -m bench.explain_batch``: the plans of a catch-up batch's hot statements (issue 18).

Applies the first ``--batches`` - 1 batches of ``--batch`` records of the catch-up benchmark's log
(:func:`bench.decode.records`, decoded and projected as the projector does) to an isolated,
migrated database through :mod:`services.projection.store`, then runs ``EXPLAIN (ANALYZE,
BUFFERS)`` of the last batch's claim (:data:`~services.projection.store.CLAIM`) and visit upsert
(:data:`~services.projection.read_model_sql.UPSERT_VISITS`) with the arguments the projector
sends, its additive writes (sums, stock; each on its own, though the projector sends them as one
statement), and of the visit-figure recomputes (district, city, room days) of the batch before it
(the days its visits started on; ends alone may add a few in the projector), ``--repeat`` times
each, every time in a transaction that is rolled back (the tables stay
as the earlier batches left them). With ``--work-mem 4MB,32MB`` (PostgreSQL's default against
the platform's, say) the runs alternate between those settings. It writes each statement's
first plan per setting as text and a JSON summary: the executor's milliseconds per run, their
median, and the temporary-file blocks the plan wrote (a batch's row set or sort that did not
fit in ``work_mem``).

The executor times are wall time of one backend on a shared 2-core machine: compare medians of
runs made in the same invocation, not single runs across invocations.
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import sys
from pathlib import Path
from typing import Any

import asyncpg
import uvloop

from bench.decode import records
from bench.env import bench_city, isolated
from bench.machine import load, machine
from services.projection import domain, store
from services.projection import read_model_sql as sql
from services.projection.domain import RawRecord
from services.projection.rooms import room_changes
from services.projection.rooms_store import apply_room_changes
from shared.settings import REPO_ROOT

OUT = REPO_ROOT / "bench" / "results" / "issue18" / "explain"
#: The statements explained: the last batch's claim and visit upsert (every start upserted, and
#: every start inserted plainly: the optimistic attempt), the recomputes of the batch before it
#: (their keys: the days its visits started on).
STATEMENTS = (
    "claim",
    "visits",
    "visits_optimistic",
    "district_recompute",
    "city_recompute",
    "facility_recompute",
)
#: "temp read=N written=M" in a plan's buffers line.
_TEMP_WRITTEN = re.compile(r"temp read=\d+ written=(\d+)")


def _table_of(statement: str) -> str:
    """The table an ``INSERT`` writes."""
    found = re.search(r"INSERT INTO (\w+)", statement)
    return found[1] if found else "unknown"


def _batches(count: int, size: int) -> list[list[domain.Decoded]]:
    """The unique events of the log's first ``count`` batches of ``size`` records."""
    city = bench_city(50)
    raw = [
        RawRecord("t", 0, i, 0, None, value, tuple(headers))
        for i, (headers, value) in enumerate(records(count * size))
    ]
    batches = []
    for i in range(0, len(raw), size):
        decoded, _ = domain.decode_batch(raw[i : i + size], city)
        batches.append(domain.first_occurrences(decoded))
    return batches


async def _explain(
    conn: asyncpg.Connection,
    statement: str,
    args: tuple[Any, ...],
    settings: list[str | None],
    repeat: int,
    before: tuple[str, tuple[Any, ...]] | None = None,
) -> dict[str, dict[str, Any]]:
    """EXPLAIN ANALYZE ``statement`` ``repeat`` times under each ``work_mem`` of ``settings``
    (None: the server's), the settings alternating within each repeat; per setting. ``before``:
    a statement run first in the same transaction, as the store does (not explained)."""
    plans: dict[str, list[str]] = {}
    for _ in range(repeat):
        for work_mem in settings:
            tr = conn.transaction()
            await tr.start()
            try:
                if work_mem is not None:
                    await conn.execute("SELECT set_config('work_mem', $1, true)", work_mem)
                shown = await conn.fetchval("SHOW work_mem")
                if before is not None:
                    await conn.execute(before[0], *before[1])
                rows = await conn.fetch(f"EXPLAIN (ANALYZE, BUFFERS) {statement}", *args)
            finally:
                await tr.rollback()
            plans.setdefault(shown, []).append("\n".join(r[0] for r in rows))
    out = {}
    for shown, texts in plans.items():
        ms = [float(p.rsplit("Execution Time:", 1)[1].split()[0]) for p in texts]
        written = [int(n) for n in _TEMP_WRITTEN.findall(texts[0])]
        out[shown] = {
            "execution_ms": [round(x, 1) for x in ms],
            "execution_ms_median": round(statistics.median(ms), 1),
            # the top node's figure (each node's buffers include its children's)
            "temp_blocks_written": written[0] if written else 0,
            "plan": texts[0],
        }
    return out


async def _measure(args: argparse.Namespace) -> dict[str, Any]:
    city = bench_city(50)
    batches = _batches(args.batches, args.batch)
    settings: list[str | None] = args.work_mem.split(",") if args.work_mem else [None]
    async with isolated("explain") as env:
        conn = await asyncpg.connect(env.dsn)
        try:
            without_start: set[tuple[str, str]] = set()  # rows an end alone made
            for unique in batches[:-1]:
                changes = domain.project_decoded(unique, city)
                without_start -= changes.visit_starts.keys()
                without_start |= changes.visit_ends.keys() - changes.visit_starts.keys()
                async with conn.transaction():
                    await store.claim_events(conn, unique)
                    await store.apply_changes(conn, changes)
                    await apply_room_changes(conn, room_changes(unique))
            last = batches[-1]
            claim = store.claim_arguments(last)
            last_changes = domain.project_decoded(last, city)
            v = store.visit_arguments(last_changes, without_start)
            visits = (v.starts, v.paired_ends, v.alone, len(v.paired_ends))  # every start upserted
            # the optimistic attempt: only the starts meeting a row an end made are upserted
            fresh = (*visits[:3], v.may_exist)
            # the recomputes of the last applied batch's visit days, as it ran them
            starts = domain.project_decoded(batches[-2], city).visit_starts.values()
            days = sorted({(s.district, s.day) for s in starts})
            room_days = sorted({(s.facility, s.day) for s in starts})
            max_visit = domain.DEFAULT_MAX_VISIT
            keys = ([k[0] for k in days], [k[1] for k in days])
            recomputes: dict[str, tuple[str, tuple[Any, ...], Any]] = {
                "district_recompute": (
                    sql.DAILY_RECOMPUTE,
                    (*keys, max_visit),
                    (store.BREAKDOWN_CLEAR, keys),  # as recompute_visit_figures does first
                ),
                "city_recompute": (
                    sql.CITY_RECOMPUTE,
                    (sorted({k[1] for k in days}), max_visit),
                    None,
                ),
                "facility_recompute": (
                    sql.FACILITY_RECOMPUTE,
                    (
                        [k[0] for k in room_days],
                        [k[1] for k in room_days],
                        sorted({k[1] for k in room_days}),
                        sorted({k[0] for k in room_days}),
                        max_visit,
                    ),
                    None,
                ),
            }
            return {
                "events_in_batch": len(last),
                "claim": await _explain(
                    conn,
                    store.CLAIM,
                    (claim.rows, len(claim.keys), claim.values),
                    settings,
                    args.repeat,
                ),
                "visits": await _explain(conn, sql.UPSERT_VISITS, visits, settings, args.repeat),
                "visits_optimistic": await _explain(
                    conn, sql.UPSERT_VISITS, fresh, settings, args.repeat
                ),
                # the batch's additive writes (one statement together), each on its own
                "additive": {
                    _table_of(text): await _explain(conn, text, params, settings, args.repeat)
                    for text, params in store.change_arguments(last_changes).additive
                },
                "recomputed_keys": {"district_days": len(days), "room_days": len(room_days)},
                **{
                    name: await _explain(conn, text, params, settings, args.repeat, before)
                    for name, (text, params, before) in recomputes.items()
                },
            }
        finally:
            await conn.close()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.explain_batch", description=__doc__)
    ap.add_argument("--batches", type=int, default=5)
    ap.add_argument("--batch", type=int, default=40_000)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument(
        "--work-mem", help="work_mem values to compare, comma-separated (default: the server's)"
    )
    ap.add_argument("--out", type=Path, default=OUT, help="directory of the files written")
    args = ap.parse_args(argv)
    before = load()
    result = uvloop.run(_measure(args))
    args.out.mkdir(parents=True, exist_ok=True)
    explained = {name: result[name] for name in STATEMENTS}
    explained |= {f"additive_{table}": r for table, r in result["additive"].items()}
    for name, per_setting in explained.items():
        for work_mem, r in per_setting.items():
            (args.out / f"{name}-plan-{work_mem}.txt").write_text(r.pop("plan") + "\n")
            print(
                f"{name}, work_mem {work_mem}: median {r['execution_ms_median']} ms "
                f"{r['execution_ms']}, temp blocks written {r['temp_blocks_written']}",
                file=sys.stderr,
            )
    doc = {
        "machine": machine(),
        "load_before": before,
        "load_after": load(),
        "batches": args.batches,
        "batch": args.batch,
        **result,
    }
    (args.out / "explain.json").write_text(json.dumps(doc, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
