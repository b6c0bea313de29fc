"""The read models' text columns are compared as bytes (COLLATE "C", migration 140, issue 18),
on the real database: every text column of every table the projection writes is "C" (a later
migration adding one with the database's collation fails here), and a listing sorted by such a
column keeps the code point order it had under the local cluster's C.UTF-8."""

from __future__ import annotations

import asyncpg
import pytest

from services.projection.store import READ_MODEL_TABLES

pytestmark = pytest.mark.integration


async def test_every_text_column_of_the_read_models_compares_bytes(
    conn: asyncpg.Connection,
) -> None:
    rows = await conn.fetch(
        """SELECT c.relname AS table_name, a.attname AS column_name, coll.collname
           FROM pg_attribute a
           JOIN pg_class c ON c.oid = a.attrelid
           JOIN pg_namespace n ON n.oid = c.relnamespace AND n.nspname = 'public'
           JOIN pg_collation coll ON coll.oid = a.attcollation
           WHERE c.relname = ANY($1::text[]) AND c.relkind = 'r'
             AND a.attnum > 0 AND NOT a.attisdropped""",
        list(READ_MODEL_TABLES),
    )
    columns = {(r["table_name"], r["column_name"]): r["collname"] for r in rows}

    assert ("visits", "client_pseudonym") in columns  # the query sees the tables
    assert {k[0] for k in columns} == set(READ_MODEL_TABLES) - {"city_daily"}  # no text there
    assert {k: c for k, c in columns.items() if c != "C"} == {}


async def test_a_listing_keeps_its_code_point_order(conn: asyncpg.Connection) -> None:
    names = ["Østerbro", "amager", "Amager Øst", "sydhavn", "Skelbækgade", "a-b", "ab", "Z", "é"]
    await conn.executemany(
        "INSERT INTO facility_state (facility, last_event_time) VALUES ($1, now())",
        [(n,) for n in names],
    )

    listed = await conn.fetch("SELECT facility FROM facility_state ORDER BY facility")

    assert [r["facility"] for r in listed] == sorted(names)  # Python's order: code points
