"""``visits`` has one index for the recomputes, (day, district) (migration 141, issue 18: one
index insertion less per visit row), on the real database: the district-day and city-day
recomputes find a day's visits through it, and no index of the old pair is left behind."""

from __future__ import annotations

import json
from datetime import date, timedelta
from typing import Any

import asyncpg
import pytest

from services.projection import read_model_sql as sql

pytestmark = pytest.mark.integration

DAY = date(2026, 3, 29)


def _index_names(plan: Any) -> set[str]:
    """Every index a JSON plan (or a node of it) reads."""
    if isinstance(plan, list):
        return set().union(*map(_index_names, plan)) if plan else set()
    if not isinstance(plan, dict):
        return set()
    found = {plan["Index Name"]} if "Index Name" in plan else set()
    return found.union(*map(_index_names, plan.values()))


async def _indexes_read(conn: asyncpg.Connection, statement: str, *args: object) -> set[str]:
    """The indexes the plan of ``statement`` reads when any index beats a full scan (the
    tables of a test are too small for the planner to prefer an index otherwise)."""
    async with conn.transaction():
        await conn.execute("SET LOCAL enable_seqscan = off")
        text = await conn.fetchval(f"EXPLAIN (FORMAT JSON) {statement}", *args)
    return _index_names(json.loads(text))


async def test_the_recomputes_find_a_days_visits_through_one_index(
    conn: asyncpg.Connection,
) -> None:
    indexes = {
        r["indexname"]: r["indexdef"]
        for r in await conn.fetch(
            "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'visits'"
        )
    }
    assert set(indexes) == {"visits_pkey", "visits_day_district", "visits_open"}
    assert indexes["visits_day_district"].endswith("(day, district)")

    district_day = await _indexes_read(
        conn, sql.DAILY_RECOMPUTE, ["vesterbro"], [DAY], timedelta(hours=4)
    )
    many_district_days = await _indexes_read(
        conn, sql.DAILY_RECOMPUTE_LARGE, ["vesterbro"], [DAY], timedelta(hours=4)
    )
    city_day = await _indexes_read(conn, sql.CITY_RECOMPUTE, [DAY], timedelta(hours=4))

    assert "visits_day_district" in district_day
    assert "visits_day_district" in many_district_days
    assert "visits_day_district" in city_day
