"""``python -m bench.pg_statements``: PostgreSQL executor time per statement of a command's run.

Runs a command (e.g. ``python -m bench.profile_catchup --events 100000 --runs 1``) while
polling ``pg_stat_statements`` (the shared cluster's; never reset, since other sessions use it:
increments only) and reports, for the database the command worked in (a database created during
the run, the one with the most executor time in the projection's claim), each statement's
calls, executor time and microseconds per event.

The command's database is created and dropped by the command itself (bench.env.isolated); its
statements stay in ``pg_stat_statements`` under its OID, which is how they are told apart from
other sessions' work. On a shared cluster the view is full (``pg_stat_statements.max``) and
evicts its least-used entries now and then, a run's statements too: it is polled every
``--every`` seconds and increments are summed per statement (an entry that went away and came
back counts from zero again), so an eviction loses at most what a statement did since the last
poll. The result says how many evictions happened during the run.

Needs the ``pg_stat_statements`` extension loaded, which deploy/scripts/postgres.sh does NOT do
(nothing in the product needs it): for a measurement, as the cluster's superuser, ``ALTER SYSTEM
SET shared_preload_libraries = 'pg_stat_statements'``, restart the cluster and ``CREATE
EXTENSION pg_stat_statements`` in database dcr; ``ALTER SYSTEM RESET shared_preload_libraries``
and a restart undo it.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg

from shared.settings import DatabaseSettings

#: A statement is the projection's claim when its text contains this (the run's database is
#: the one with the most executor time in it).
CLAIM_MARK = "INSERT INTO projection_events"

Key = tuple[int, int]  # (dbid, queryid)
#: The statements of databases that did not exist when the run began ($1: their OIDs then).
_POLL = """SELECT dbid::bigint AS dbid, queryid, calls, total_exec_time, rows, query
           FROM pg_stat_statements WHERE queryid IS NOT NULL AND NOT dbid = ANY($1::oid[])"""


@dataclass
class Tally:
    """Executor work per statement of the databases created during the run, summed over
    polls (see the module doc)."""

    old_dbs: list[int]
    last: dict[Key, tuple[int, float, int]] = field(default_factory=dict)
    calls: dict[Key, int] = field(default_factory=dict)
    ms: dict[Key, float] = field(default_factory=dict)
    rows: dict[Key, int] = field(default_factory=dict)
    text: dict[Key, str] = field(default_factory=dict)

    async def poll(self, conn: asyncpg.Connection) -> None:
        for r in await conn.fetch(_POLL, self.old_dbs):
            key = (r["dbid"], r["queryid"])
            now = (r["calls"], r["total_exec_time"], r["rows"])
            prev = self.last.get(key, (0, 0.0, 0))
            if now[0] < prev[0]:  # evicted and seen again: counting from zero
                prev = (0, 0.0, 0)
            self.calls[key] = self.calls.get(key, 0) + now[0] - prev[0]
            self.ms[key] = self.ms.get(key, 0.0) + now[1] - prev[1]
            self.rows[key] = self.rows.get(key, 0) + now[2] - prev[2]
            self.last[key] = now
            self.text.setdefault(key, " ".join(r["query"].split()))

    def result(self, events: int) -> dict[str, Any]:
        by_db: dict[int, list[Key]] = {}
        for key in self.calls:
            by_db.setdefault(key[0], []).append(key)
        if not by_db:
            return {"statements": [], "total_us_per_event": 0.0}

        def claim_ms(dbid: int) -> float:
            return sum(self.ms[k] for k in by_db[dbid] if CLAIM_MARK in self.text.get(k, ""))

        dbid = max(by_db, key=claim_ms)
        keys = sorted((k for k in by_db[dbid] if self.calls[k] > 0), key=lambda k: -self.ms[k])
        statements: list[dict[str, Any]] = [
            {
                "query": self.text.get(k, "?")[:160],
                # the tables its INSERTs write (which CTEs a combined statement holds)
                "writes": _WRITES.findall(self.text.get(k, "")),
                "calls": self.calls[k],
                "exec_ms": round(self.ms[k], 1),
                "rows": self.rows[k],
                "us_per_event": round(self.ms[k] * 1000 / events, 2),
            }
            for k in keys
        ]
        total = round(sum(self.ms[k] for k in keys) * 1000 / events, 2)
        return {"dbid": dbid, "total_us_per_event": total, "statements": statements}


#: The table an ``INSERT`` of a statement writes.
_WRITES = re.compile(r"INSERT INTO (\w+)")


async def _run(command: list[str], cwd: Path | None, events: int, every: float) -> dict[str, Any]:
    conn = await asyncpg.connect(DatabaseSettings().dsn.get_secret_value())
    try:
        old = [  # databases of before the run, and dropped ones whose statements are still kept
            r["oid"]
            for r in await conn.fetch(
                """SELECT oid::bigint AS oid FROM pg_database
                   UNION SELECT dbid::bigint FROM pg_stat_statements"""
            )
        ]
        dealloc = "SELECT dealloc FROM pg_stat_statements_info"
        evictions = await conn.fetchval(dealloc)
        tally = Tally(old)
        proc = await asyncio.create_subprocess_exec(*command, cwd=cwd)
        while True:
            await tally.poll(conn)
            try:
                rc = await asyncio.wait_for(proc.wait(), timeout=every)
                break
            except TimeoutError:
                continue
        await tally.poll(conn)
        evictions = await conn.fetchval(dealloc) - evictions
    finally:
        await conn.close()
    return {"command": command, "rc": rc, "evictions_during_run": evictions, **tally.result(events)}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.pg_statements", description=__doc__)
    ap.add_argument("--events", type=int, required=True, help="events the command applies")
    ap.add_argument("--out", type=Path, default=None, help="JSON result")
    ap.add_argument("--cwd", type=Path, default=None, help="run the command there")
    ap.add_argument("--every", type=float, default=0.5, help="seconds between polls")
    ap.add_argument("--top", type=int, default=15)
    ap.add_argument("command", nargs=argparse.REMAINDER, help="-- the command to run")
    args = ap.parse_args(argv)
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    result = asyncio.run(_run(command, args.cwd, args.events, args.every))
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(
        f"PostgreSQL executor time: {result['total_us_per_event']} us per event "
        f"({result['evictions_during_run']} evictions of pg_stat_statements during the run)"
    )
    for s in result["statements"][: args.top]:
        print(f"  {s['us_per_event']:7.2f} us/event {s['calls']:>6} calls  {s['query'][:100]}")
    return int(result["rc"])


if __name__ == "__main__":
    sys.exit(main())
