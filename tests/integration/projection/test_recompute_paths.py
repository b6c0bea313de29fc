"""A recompute of many keys (a catch-up's flush) and of a few (a live batch) take different
statements and plans (``read_model_sql.daily_recompute``, ``store.recompute_visit_figures``):
on the real database both give the figures counted from the visits themselves."""

from __future__ import annotations

import random
import statistics
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import asyncpg
import pytest

from services.projection import read_model_sql as sql
from services.projection import store

pytestmark = pytest.mark.integration

MAX_VISIT = timedelta(hours=4)
FIRST_DAY = date(2026, 3, 1)
#: 3 districts x 40 days: more district-days than the large path's threshold.
DISTRICTS = ("indre-by", "norrebro", "vesterbro")
DAYS = 40
ROOMS = {d: (f"{d}-a", f"{d}-b") for d in DISTRICTS}
DISTRICT_OF = {room: d for d, rooms in ROOMS.items() for room in rooms}

_TABLES = ("district_daily", "district_daily_breakdown", "facility_daily", "city_daily")


def _visits() -> list[tuple[Any, ...]]:
    """Visit rows with repeated clients, open visits, impossible and too-long ones (fixed
    seed: the same rows every run)."""
    rng = random.Random(18)
    rows = []
    for district in DISTRICTS:
        for n in range(DAYS):
            day = FIRST_DAY + timedelta(days=n)
            for room in ROOMS[district]:
                for i in range(rng.randint(1, 6)):
                    start = datetime(day.year, day.month, day.day, 10, tzinfo=UTC)
                    start += timedelta(minutes=rng.randint(0, 600))
                    length = rng.choice([None, -5, 300, *range(5, 90)])
                    end = None if length is None else start + timedelta(minutes=length)
                    rows.append(
                        (
                            room,
                            f"{day}-{i}",
                            district,
                            day,
                            start,
                            end,
                            f"client-{rng.randint(1, 12)}",
                            rng.choice(["inject", "smoke"]),
                            [rng.choice(["heroin", "cocaine"])],
                            rng.random() < 0.2,
                            rng.random() < 0.1,
                            "key-1",
                        )
                    )
    return rows


async def _tables(conn: asyncpg.Connection) -> dict[str, list[dict[str, Any]]]:
    """Every row of the figure tables, in a fixed order."""
    return {
        t: sorted(
            (dict(r) for r in await conn.fetch(f"SELECT * FROM {t}")),
            key=lambda r: tuple(map(str, r.values())),
        )
        for t in _TABLES
    }


async def _recompute(
    conn: asyncpg.Connection, keys: list[tuple[str, date]], facility_keys: list[tuple[str, date]]
) -> str:
    """Recompute in one transaction; returns the plan mode the transaction ended with."""
    async with conn.transaction():
        await store.recompute_visit_figures(conn, set(keys), set(facility_keys), MAX_VISIT)
        mode: str = await conn.fetchval("SHOW plan_cache_mode")
    return mode


async def test_a_large_and_a_small_recompute_give_the_figures_of_the_visits(
    conn: asyncpg.Connection,
) -> None:
    rows = _visits()
    await conn.copy_records_to_table(
        "visits",
        records=rows,
        columns=[
            "facility",
            "visit_id",
            "district",
            "day",
            "start_time",
            "end_time",
            "client_pseudonym",
            "route",
            "substances",
            "assisted_injection",
            "first_visit",
            "pseudonym_key",
        ],
    )
    keys = sorted({(r[2], r[3]) for r in rows})
    facility_keys = sorted({(r[0], r[3]) for r in rows})
    assert len(keys) >= sql.LARGE_RECOMPUTE > 30

    # one flush of every key: the large path, planned for its arguments
    assert await _recompute(conn, keys, facility_keys) == "force_custom_plan"
    large = await _tables(conn)
    # the same keys a few at a time, as live batches recompute them
    for table in _TABLES:
        await conn.execute(f"TRUNCATE {table}")
    for i in range(0, len(keys), 7):
        chunk = keys[i : i + 7]
        rooms = [(r, d) for r, d in facility_keys if (DISTRICT_OF[r], d) in chunk]
        assert await _recompute(conn, chunk, rooms) == "auto"
    small = await _tables(conn)

    assert large == small
    # and both are the visits' own figures
    daily = {(r["district"], r["day"]): r for r in large["district_daily"]}
    assert len(daily) == len(keys)
    for district, day in keys:
        theirs = [r for r in rows if r[2] == district and r[3] == day]
        done = [
            (r[5] - r[4]).total_seconds() / 60
            for r in theirs
            if r[5] is not None and timedelta(0) <= r[5] - r[4] <= MAX_VISIT
        ]
        row = daily[(district, day)]
        assert row["visits"] == len(theirs)
        assert row["unique_clients"] == len({r[6] for r in theirs})
        assert row["visits_completed"] == len(done)
        median = round(Decimal(statistics.median(done)), 2) if done else None
        assert row["visit_minutes_median"] == median
    rooms_daily = {(r["facility"], r["day"]): r["visits"] for r in large["facility_daily"]}
    assert rooms_daily == {k: sum(1 for r in rows if (r[0], r[3]) == k) for k in facility_keys}
