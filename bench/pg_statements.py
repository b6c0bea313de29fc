"""``python -m bench.pg_statements``: PostgreSQL executor time per statement of a command's run.

Runs a command (e.g. ``python -m bench.profile_catchup --events 100000 --runs 1``) between two
snapshots of ``pg_stat_statements`` (the shared cluster's; never reset, since other sessions use
it: deltas only) and reports, for the database the command worked in (the new database with
the most executor time on the projection's claim), each statement's calls, executor time and
microseconds per event.

The command's database is created and dropped by the command itself (bench.env.isolated); its
statements stay in ``pg_stat_statements`` under its OID, which is how they are told apart from
other sessions' work.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import asyncpg

from shared.settings import DatabaseSettings

#: A statement is the projection's claim when its text starts so (the run's database is the
#: one with the most executor time in it).
CLAIM_MARK = "INSERT INTO projection_events"

Key = tuple[int, int]  # (dbid, queryid)


async def snapshot(dsn: str) -> dict[Key, dict[str, Any]]:
    """Every statement's cumulated calls, executor milliseconds and rows, by (dbid, queryid)."""
    conn = await asyncpg.connect(dsn)
    try:
        rows = await conn.fetch(
            """SELECT dbid::bigint AS dbid, queryid, calls, total_exec_time, rows, query
               FROM pg_stat_statements WHERE queryid IS NOT NULL"""
        )
    finally:
        await conn.close()
    return {(r["dbid"], r["queryid"]): dict(r) for r in rows}


def deltas(
    before: dict[Key, dict[str, Any]], after: dict[Key, dict[str, Any]], events: int
) -> dict[str, Any]:
    """The statements of the run's database (see module doc), dearest first."""
    new: dict[int, list[dict[str, Any]]] = {}
    for key, row in after.items():
        old = before.get(key)
        calls = row["calls"] - (old["calls"] if old else 0)
        if calls <= 0:
            continue
        ms = row["total_exec_time"] - (old["total_exec_time"] if old else 0.0)
        new.setdefault(key[0], []).append(
            {
                "query": " ".join(row["query"].split())[:160],
                "calls": calls,
                "exec_ms": round(ms, 1),
                "rows": row["rows"] - (old["rows"] if old else 0),
                "us_per_event": round(ms * 1000 / events, 2),
            }
        )

    def claim_ms(dbid: int) -> float:
        return float(sum(s["exec_ms"] for s in new[dbid] if s["query"].startswith(CLAIM_MARK)))

    if not new:
        return {"statements": [], "total_us_per_event": 0.0}
    dbid = max(new, key=claim_ms)
    statements = sorted(new[dbid], key=lambda s: -s["exec_ms"])
    total = sum(s["us_per_event"] for s in statements)
    return {"dbid": dbid, "total_us_per_event": round(total, 2), "statements": statements}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.pg_statements", description=__doc__)
    ap.add_argument("--events", type=int, required=True, help="events the command applies")
    ap.add_argument("--out", type=Path, default=None, help="JSON result")
    ap.add_argument("--cwd", type=Path, default=None, help="run the command there")
    ap.add_argument("--top", type=int, default=15)
    ap.add_argument("command", nargs=argparse.REMAINDER, help="-- the command to run")
    args = ap.parse_args(argv)
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    dsn = DatabaseSettings().dsn.get_secret_value()
    before = asyncio.run(snapshot(dsn))
    rc = subprocess.call(command, cwd=args.cwd)  # noqa: S603 - the operator's own command
    after = asyncio.run(snapshot(dsn))
    result = {"command": command, "rc": rc, **deltas(before, after, args.events)}
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"PostgreSQL executor time: {result['total_us_per_event']} us per event")
    for s in result["statements"][: args.top]:
        print(f"  {s['us_per_event']:7.2f} us/event {s['calls']:>6} calls  {s['query'][:100]}")
    return rc


if __name__ == "__main__":
    sys.exit(main())
