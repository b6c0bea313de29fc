"""``python -m bench.transport``: how to ship a batch's rows to PostgreSQL (issue 18).

The projection's hot statements send one array per column (``unnest($1::text[], ...)``); asyncpg
encodes each element in Python-level code (with ABC checks per element). This measures, for the
two largest statements of a batch (the claim of every event in ``projection_events`` and the
upsert of the visit starts), the Python CPU and the PostgreSQL executor time of:

- ``arrays``: the code before this change (one list per column, ``unnest`` of typed arrays);
- ``arrays_zip``: one tuple per row, transposed by ``zip(*rows)`` (C), same SQL;
- ``json_rows``: one msgspec-encoded JSON document per statement, an array of arrays
  (``json_array_elements`` and ``->>`` casts);
- ``jsonb_rows_blob`` (the claim only): ``jsonb`` rows without the values, which follow as
  one ``bytea`` parameter (each row: where its value starts, its length);
- ``json_records``: one JSON document of objects (msgspec encodes the rows: tuples turned into
  objects by ``json_to_recordset``'s column list; the visit starts' dataclasses encoded as they
  are);
- ``copy``: ``copy_records_to_table`` (binary COPY) into a temporary table, then the same
  ``INSERT ... SELECT`` from it.

The workload is the catch-up benchmark's log (:func:`bench.decode.records`), decoded and
projected in batches of ``--batch`` records as the projector does; each variant applies the
same batches in sequence to emptied tables (``--rounds`` rounds, variants alternating) and the
tables' contents must come out identical. Python CPU is this process's CPU time
(``time.process_time``) over building the arguments, encoding and the round trip (garbage
collection tuned as in the service, and run before each variant); PostgreSQL
time is the executor time ``pg_stat_statements`` records for the database (deltas), reported
as null when the server does not load that extension (the project's PostgreSQL does not: see
:mod:`bench.pg_statements` for how to enable it); wall minus Python CPU is then the PostgreSQL
side's figure.
"""

from __future__ import annotations

import argparse
import gc
import json
import statistics
import sys
import time
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any

import asyncpg
import msgspec
import uvloop

from bench.decode import records
from bench.env import bench_city, isolated
from bench.machine import load, machine
from services.projection import domain, store
from services.projection import read_model_sql as sql
from services.projection.domain import Changes, Decoded, RawRecord
from services.projection.gc_policy import tune_gc
from shared.settings import REPO_ROOT, DatabaseSettings

OUT = REPO_ROOT / "bench" / "results" / "issue18" / "transport.json"
_JSON = msgspec.json.Encoder(decimal_format="number")

Variant = Callable[[asyncpg.Connection, list[Decoded], Changes], Awaitable[None]]


# --- the claim ------------------------------------------------------------------------------

_CLAIM_TAIL = """ON CONFLICT DO NOTHING RETURNING source, id)
SELECT new.source, new.id, v.source IS NOT NULL AS voided
FROM new LEFT JOIN projection_voids v ON v.source = new.source AND v.target_id = new.id"""

_CLAIM_VALUE = """CASE WHEN dg IS NOT NULL AND EXISTS (
    SELECT 1 FROM erased_pseudonyms e WHERE e.digest = dg) THEN NULL ELSE v END"""

CLAIM_ARRAYS = f"""WITH new AS (
INSERT INTO projection_events (source, id, type, time, value, schema_version)
SELECT s, i, t, tm, {_CLAIM_VALUE}, sv
FROM unnest($1::text[], $2::uuid[], $3::text[], $4::timestamptz[], $5::bytea[], $6::smallint[],
            $7::bytea[]) AS u(s, i, t, tm, v, sv, dg)
{_CLAIM_TAIL}"""  # noqa: S608 - fixed text

CLAIM_JSON_ROWS = f"""WITH new AS (
INSERT INTO projection_events (source, id, type, time, value, schema_version)
SELECT s, i, t, tm, {_CLAIM_VALUE}, sv
FROM (SELECT r->>0 AS s, (r->>1)::uuid AS i, r->>2 AS t, (r->>3)::timestamptz AS tm,
             decode(r->>4, 'base64') AS v, (r->>5)::smallint AS sv,
             decode(r->>6, 'base64') AS dg
      FROM json_array_elements($1::json) AS r) u
{_CLAIM_TAIL}"""  # noqa: S608 - fixed text

CLAIM_JSON_RECORDS = f"""WITH new AS (
INSERT INTO projection_events (source, id, type, time, value, schema_version)
SELECT s, i, t, tm, {_CLAIM_VALUE}, sv
FROM (SELECT s, i, t, tm, decode(v, 'base64') AS v, sv, decode(dg, 'base64') AS dg
      FROM json_to_recordset($1::json)
           AS u(s text, i uuid, t text, tm timestamptz, v text, sv smallint, dg text)) u
{_CLAIM_TAIL}"""  # noqa: S608 - fixed text

CLAIM_JSONB_ROWS = CLAIM_JSON_ROWS.replace(
    "json_array_elements($1::json)", "jsonb_array_elements($1::jsonb)"
)

CLAIM_TEMP = """CREATE TEMP TABLE IF NOT EXISTS claim_rows (
    s text, i uuid, t text, tm timestamptz, v bytea, sv smallint, dg bytea) ON COMMIT DELETE ROWS"""

CLAIM_COPY = f"""WITH new AS (
INSERT INTO projection_events (source, id, type, time, value, schema_version)
SELECT s, i, t, tm, {_CLAIM_VALUE}, sv FROM claim_rows u
{_CLAIM_TAIL}"""  # noqa: S608 - fixed text


class ClaimRecord(msgspec.Struct):
    s: str
    i: str
    t: str
    tm: Any
    v: bytes
    sv: int
    dg: bytes | None


def _claim_tuples(events: list[Decoded]) -> list[tuple[Any, ...]]:
    digest = store._pseudonym_digest
    return [
        (
            d.dedup_key[0],
            d.dedup_key[1],
            d.event.type,
            d.event.time,
            d.record.value,
            d.schema_version,
            digest(d),
        )
        for d in sorted(events, key=store._DEDUP_KEY)
    ]


async def claim_arrays(conn: asyncpg.Connection, events: list[Decoded], _: Changes) -> None:
    events = sorted(events, key=store._DEDUP_KEY)
    await conn.fetch(
        CLAIM_ARRAYS,
        [d.event.source for d in events],
        [d.event.id for d in events],
        [d.event.type for d in events],
        [d.event.time for d in events],
        [d.record.value for d in events],
        [d.schema_version for d in events],
        [store._pseudonym_digest(d) for d in events],
    )


async def claim_arrays_zip(conn: asyncpg.Connection, events: list[Decoded], _: Changes) -> None:
    await conn.fetch(CLAIM_ARRAYS, *zip(*_claim_tuples(events), strict=True))


async def claim_json_rows(conn: asyncpg.Connection, events: list[Decoded], _: Changes) -> None:
    await conn.fetch(CLAIM_JSON_ROWS, _JSON.encode(_claim_tuples(events)).decode())


async def claim_jsonb_rows(conn: asyncpg.Connection, events: list[Decoded], _: Changes) -> None:
    await conn.fetch(CLAIM_JSONB_ROWS, _JSON.encode(_claim_tuples(events)).decode())


async def claim_jsonb_rows_blob(
    conn: asyncpg.Connection, events: list[Decoded], _: Changes
) -> None:
    """The projection's claim (:data:`services.projection.store.CLAIM`): jsonb rows without the
    values, which follow as one ``bytea`` (each row says where its value starts and its length)."""
    claim = store.claim_arguments(events)
    await conn.fetch(store.CLAIM, claim.rows, len(claim.keys), claim.values)


async def claim_json_records(conn: asyncpg.Connection, events: list[Decoded], _: Changes) -> None:
    digest = store._pseudonym_digest
    rows = [
        ClaimRecord(
            d.dedup_key[0],
            d.dedup_key[1],
            d.event.type,
            d.event.time,
            d.record.value,  # type: ignore[arg-type]
            d.schema_version,
            digest(d),
        )
        for d in sorted(events, key=store._DEDUP_KEY)
    ]
    await conn.fetch(CLAIM_JSON_RECORDS, _JSON.encode(rows).decode())


async def claim_copy(conn: asyncpg.Connection, events: list[Decoded], _: Changes) -> None:
    await conn.execute(CLAIM_TEMP)
    await conn.copy_records_to_table("claim_rows", records=_claim_tuples(events))
    await conn.fetch(CLAIM_COPY)


# --- the visit starts -----------------------------------------------------------------------

#: The visit starts' upsert before issue 18's transport (one array per column), for comparison.
STARTS_ARRAYS = f"""INSERT INTO visits (facility, visit_id, district, day, start_time,
    client_pseudonym, route, substances, assisted_injection, first_visit, end_time, pseudonym_key)
SELECT f, v, d, dy, st, cp, r, string_to_array(s, ','), a, fv, et, pk
FROM unnest($1::text[], $2::text[], $3::text[], $4::date[], $5::timestamptz[],
            $6::text[], $7::text[], $8::text[], $9::bool[], $10::bool[],
            $11::timestamptz[], $12::text[])
     AS u(f, v, d, dy, st, cp, r, s, a, fv, et, pk)
ON CONFLICT (facility, visit_id) DO UPDATE
SET {sql._FIRST_START_WINS},
    end_time = least(visits.end_time, EXCLUDED.end_time)
WHERE visits.start_time IS NULL
   OR (EXCLUDED.end_time IS NOT NULL
       AND (visits.end_time IS NULL OR EXCLUDED.end_time < visits.end_time))
RETURNING district, day, facility"""  # noqa: S608 - fixed text
_STARTS_SELECT = "SELECT f, v, d, dy, st, cp, r, string_to_array(s, ','), a, fv, et, pk"
_STARTS_HEAD, _STARTS_TAIL = STARTS_ARRAYS.split("ON CONFLICT", 1)
_STARTS_INSERT = _STARTS_HEAD.split("SELECT", 1)[0]

STARTS_JSON_RECORDS = f"""{_STARTS_INSERT}
SELECT facility, visit_id, district, day, start_time, client_pseudonym, route, substances,
       assisted_injection, first_visit, et::timestamptz, pseudonym_key
FROM ROWS FROM (
    json_to_recordset($1::json) AS (facility text, visit_id text, district text, day date,
        start_time timestamptz, client_pseudonym text, route text, substances text[],
        assisted_injection boolean, first_visit boolean, pseudonym_key text),
    json_array_elements_text($2::json)) AS x(facility, visit_id, district, day, start_time,
        client_pseudonym, route, substances, assisted_injection, first_visit, pseudonym_key, et)
ON CONFLICT{_STARTS_TAIL}"""  # noqa: S608 - fixed text

STARTS_JSON_ROWS = f"""{_STARTS_INSERT}
{_STARTS_SELECT}
FROM (SELECT r->>0 AS f, r->>1 AS v, r->>2 AS d, (r->>3)::date AS dy,
             (r->>4)::timestamptz AS st, r->>5 AS cp, r->>6 AS r, r->>7 AS s,
             (r->>8)::boolean AS a, (r->>9)::boolean AS fv, (r->>10)::timestamptz AS et,
             r->>11 AS pk
      FROM json_array_elements($1::json) AS r) u
ON CONFLICT{_STARTS_TAIL}"""  # noqa: S608 - fixed text

STARTS_TEMP = """CREATE TEMP TABLE IF NOT EXISTS start_rows (
    f text, v text, d text, dy date, st timestamptz, cp text, r text, s text, a boolean,
    fv boolean, et timestamptz, pk text) ON COMMIT DELETE ROWS"""

STARTS_COPY = f"""{_STARTS_INSERT}
{_STARTS_SELECT} FROM start_rows u
ON CONFLICT{_STARTS_TAIL}"""


def _start_tuples(ch: Changes) -> list[tuple[Any, ...]]:
    ends = ch.visit_ends
    out = []
    for k in sorted(ch.visit_starts):
        s = ch.visit_starts[k]
        e = ends.get(k)
        out.append(
            (
                s.facility,
                s.visit_id,
                s.district,
                s.day,
                s.start_time,
                s.client_pseudonym,
                s.route,
                ",".join(s.substances),
                s.assisted_injection,
                s.first_visit,
                e.end_time if e is not None else None,
                s.pseudonym_key,
            )
        )
    return out


async def starts_arrays(conn: asyncpg.Connection, _: list[Decoded], ch: Changes) -> None:
    keys = sorted(ch.visit_starts)
    starts = [ch.visit_starts[k] for k in keys]
    ends = [ch.visit_ends.get(k) for k in keys]
    await conn.fetch(
        STARTS_ARRAYS,
        [s.facility for s in starts],
        [s.visit_id for s in starts],
        [s.district for s in starts],
        [s.day for s in starts],
        [s.start_time for s in starts],
        [s.client_pseudonym for s in starts],
        [s.route for s in starts],
        [",".join(s.substances) for s in starts],
        [s.assisted_injection for s in starts],
        [s.first_visit for s in starts],
        [e.end_time if e is not None else None for e in ends],
        [s.pseudonym_key for s in starts],
    )


async def starts_arrays_zip(conn: asyncpg.Connection, _: list[Decoded], ch: Changes) -> None:
    await conn.fetch(STARTS_ARRAYS, *zip(*_start_tuples(ch), strict=True))


async def starts_json_rows(conn: asyncpg.Connection, _: list[Decoded], ch: Changes) -> None:
    await conn.fetch(STARTS_JSON_ROWS, _JSON.encode(_start_tuples(ch)).decode())


async def starts_json_records(conn: asyncpg.Connection, _: list[Decoded], ch: Changes) -> None:
    keys = sorted(ch.visit_starts)
    starts, ends = ch.visit_starts, ch.visit_ends
    end_times = [e.end_time if (e := ends.get(k)) is not None else None for k in keys]
    await conn.fetch(
        STARTS_JSON_RECORDS,
        _JSON.encode([starts[k] for k in keys]).decode(),
        _JSON.encode(end_times).decode(),
    )


async def starts_copy(conn: asyncpg.Connection, _: list[Decoded], ch: Changes) -> None:
    await conn.execute(STARTS_TEMP)
    await conn.copy_records_to_table("start_rows", records=_start_tuples(ch))
    await conn.fetch(STARTS_COPY)


VARIANTS: dict[str, dict[str, Variant]] = {
    "claim": {
        "arrays": claim_arrays,
        "arrays_zip": claim_arrays_zip,
        "json_rows": claim_json_rows,
        "jsonb_rows": claim_jsonb_rows,
        "jsonb_rows_blob": claim_jsonb_rows_blob,
        "json_records": claim_json_records,
        "copy": claim_copy,
    },
    "visit_starts": {
        "arrays": starts_arrays,
        "arrays_zip": starts_arrays_zip,
        "json_rows": starts_json_rows,
        "json_records": starts_json_records,
        "copy": starts_copy,
    },
}

_TABLE = {"claim": "projection_events", "visit_starts": "visits"}
#: Executor milliseconds of every statement of database $1 so far (the view lives in the
#: server's own database, where the extension is installed).
_EXEC_MS = """SELECT coalesce(sum(total_exec_time), 0)::float8 FROM pg_stat_statements
              WHERE dbid = (SELECT oid FROM pg_database WHERE datname = $1)"""


async def _exec_ms(stats: asyncpg.Connection, db: str) -> float | None:
    """Executor milliseconds of database ``db`` so far; None without ``pg_stat_statements``."""
    try:
        ms: float = await stats.fetchval(_EXEC_MS, db)
    except (
        asyncpg.exceptions.ObjectNotInPrerequisiteStateError,  # installed, not preloaded
        asyncpg.exceptions.UndefinedTableError,  # not installed
    ):
        return None
    return ms


def _batches(n: int, size: int) -> list[tuple[list[Decoded], Changes]]:
    city = bench_city(50)
    raw = [
        RawRecord("t", 0, i, 0, None, value, tuple(headers))
        for i, (headers, value) in enumerate(records(n))
    ]
    out = []
    for i in range(0, len(raw), size):
        decoded, _ = domain.decode_batch(raw[i : i + size], city)
        unique = domain.first_occurrences(decoded)
        out.append((unique, domain.project_decoded(unique, city)))
    return out


async def _run_variant(
    conn: asyncpg.Connection,
    stats: asyncpg.Connection,
    statement: str,
    variant: Variant,
    batches: Sequence[tuple[list[Decoded], Changes]],
) -> dict[str, Any]:
    table = _TABLE[statement]
    await conn.execute(f"TRUNCATE {table}")
    gc.collect()  # each variant starts with nothing left to collect from the one before
    cpu = wall = 0.0
    db = await conn.fetchval("SELECT current_database()")
    ms0 = await _exec_ms(stats, db)
    for events, ch in batches:
        async with conn.transaction():
            c0, w0 = time.process_time(), time.perf_counter()
            await variant(conn, events, ch)
            cpu += time.process_time() - c0
            wall += time.perf_counter() - w0
    ms1 = await _exec_ms(stats, db)
    exec_us = None if ms0 is None or ms1 is None else (ms1 - ms0) * 1000
    rows = sum(len(e) if statement == "claim" else len(ch.visit_starts) for e, ch in batches)
    digest = await conn.fetchval(
        f"SELECT md5(string_agg(t::text, '|' ORDER BY t::text)) FROM {table} t"  # noqa: S608
    )
    return {
        "rows": rows,
        "python_cpu_us_per_row": cpu / rows * 1e6,
        "postgres_exec_us_per_row": None if exec_us is None else exec_us / rows,
        "wall_us_per_row": wall / rows * 1e6,
        "digest": digest,
    }


_FIGURES = ("python_cpu_us_per_row", "postgres_exec_us_per_row", "wall_us_per_row")


async def _measure(args: argparse.Namespace) -> dict[str, Any]:
    batches = _batches(args.events, args.batch)
    tune_gc()  # as the service: the batches leave the collector's view (gc.freeze)
    raw: dict[str, dict[str, list[dict[str, float]]]] = {s: {} for s in VARIANTS}
    async with isolated("transport") as env:
        conn = await asyncpg.connect(env.dsn)
        stats = await asyncpg.connect(DatabaseSettings().dsn.get_secret_value())
        try:
            for _ in range(args.rounds):
                for statement, variants in VARIANTS.items():
                    for name, variant in variants.items():
                        row = await _run_variant(conn, stats, statement, variant, batches)
                        raw[statement].setdefault(name, []).append(row)
                        print(f"transport: {statement}/{name}: {row}", file=sys.stderr)
        finally:
            await conn.close()
            await stats.close()
    result: dict[str, Any] = {}
    for statement, by_name in raw.items():
        digests = {r["digest"] for rows in by_name.values() for r in rows}
        if len(digests) != 1:
            raise AssertionError(f"{statement}: the variants wrote different rows: {by_name}")
        result[statement] = {
            name: {
                "rows_per_run": rows[0]["rows"],
                **{k: _median([r[k] for r in rows]) for k in _FIGURES},
                "runs": len(rows),
            }
            for name, rows in by_name.items()
        }
    return result


def _median(values: list[float | None]) -> float | None:
    """The rounded median; None when a run had no figure (no ``pg_stat_statements``)."""
    if any(v is None for v in values):
        return None
    return round(statistics.median(v for v in values if v is not None), 3)


def _us(value: float | None) -> str:
    return "      -" if value is None else f"{value:7.2f}"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.transport", description=__doc__)
    ap.add_argument("--events", type=int, default=100_000)
    ap.add_argument("--batch", type=int, default=20_000)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--out", type=Path, default=OUT)
    args = ap.parse_args(argv)
    before = load()
    result = uvloop.run(_measure(args))
    doc = {
        "machine": machine(),
        "load_before": before,
        "load_after": load(),
        "events": args.events,
        "batch": args.batch,
        **result,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(doc, indent=2) + "\n")
    for statement in VARIANTS:
        print(f"{statement} (us per row: Python CPU / PostgreSQL executor / wall)")
        for name, r in result[statement].items():
            print(
                f"  {name:13} {_us(r['python_cpu_us_per_row'])} "
                f"{_us(r['postgres_exec_us_per_row'])} {_us(r['wall_us_per_row'])}"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
