"""Read-side SQL of the projection API (asyncpg). Returns plain values; shaping is in figures."""

from __future__ import annotations

from collections import defaultdict
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from services.projection.figures import Day, day_from_rows
from services.projection.store import Conn


async def district_days(
    conn: Conn, districts: list[str], start: date, end: date
) -> dict[tuple[str, date], Day]:
    """Figures per (district, day) that have any data in [start, end]."""
    rows = await conn.fetch(
        "SELECT * FROM district_daily WHERE district = ANY($1::text[]) AND day BETWEEN $2 AND $3",
        districts,
        start,
        end,
    )
    parts = await conn.fetch(
        """SELECT district, day, dimension, key, n FROM district_daily_breakdown
           WHERE district = ANY($1::text[]) AND day BETWEEN $2 AND $3""",
        districts,
        start,
        end,
    )
    by_key: dict[tuple[str, date], list[tuple[str, str, int]]] = defaultdict(list)
    for p in parts:
        by_key[(p["district"], p["day"])].append((p["dimension"], p["key"], p["n"]))
    out: dict[tuple[str, date], Day] = {}
    for r in rows:
        key = (r["district"], r["day"])
        out[key] = day_from_rows(dict(r), by_key.pop(key, []))
    for key, items in by_key.items():  # breakdown without a daily row cannot happen; be total
        out[key] = day_from_rows(None, items)
    return out


async def city_days(conn: Conn, start: date, end: date) -> dict[date, tuple[int, Decimal | None]]:
    """City-wide (distinct clients, median minutes) per day (``city_daily``): neither adds up
    from the districts' (a person in two districts; medians)."""
    rows = await conn.fetch(
        """SELECT day, unique_clients, visit_minutes_median FROM city_daily
           WHERE day BETWEEN $1 AND $2""",
        start,
        end,
    )
    return {r["day"]: (r["unique_clients"], r["visit_minutes_median"]) for r in rows}


async def facility_live(
    conn: Conn, facility: str, today: date, now: datetime, stale_hours: float
) -> dict[str, Any]:
    row = await conn.fetchrow(
        """SELECT
             (SELECT count(*) FROM visits
              WHERE facility = $1 AND start_time IS NOT NULL AND end_time IS NULL
                AND start_time > $3::timestamptz - make_interval(secs => $4)
                AND start_time <= $3::timestamptz + interval '5 minutes') AS in_use,
             (SELECT visits FROM facility_daily WHERE facility = $1 AND day = $2) AS visits,
             (SELECT refusals FROM facility_daily WHERE facility = $1 AND day = $2) AS refusals,
             (SELECT last_event_time FROM facility_state WHERE facility = $1) AS last_event""",
        facility,
        today,
        now,
        stale_hours * 3600,
    )
    assert row is not None
    return {
        "in_use": row["in_use"],
        "visits_today": row["visits"] or 0,
        "refusals_today": row["refusals"] or 0,
        "last_event_time": row["last_event"],
    }


async def facility_stock(conn: Conn, facility: str, now: datetime) -> list[dict[str, Any]]:
    """Per item: on hand (latest count + movements strictly after it) and 7-day dispensing."""
    rows = await conn.fetch(
        """WITH items AS (SELECT item FROM stock_movements WHERE facility = $1
                          UNION SELECT item FROM stock_counts WHERE facility = $1)
           SELECT i.item, c.counted_at, coalesce(c.quantity, 0) AS counted,
                  coalesce((SELECT sum(m.delta) FROM stock_movements m
                            WHERE m.facility = $1 AND m.item = i.item
                              AND (c.counted_at IS NULL OR m.at > c.counted_at)), 0) AS moved,
                  coalesce((SELECT -sum(m.delta) FROM stock_movements m
                            WHERE m.facility = $1 AND m.item = i.item AND m.delta < 0
                              AND m.at > $2::timestamptz - interval '7 days'
                              AND m.at <= $2::timestamptz), 0) AS used_7d
           FROM items i LEFT JOIN stock_counts c ON c.facility = $1 AND c.item = i.item
           ORDER BY i.item""",
        facility,
        now,
    )
    return [dict(r) for r in rows]


async def alerts(
    conn: Conn, district: str | None, since: datetime | None, limit: int
) -> list[dict[str, Any]]:
    rows = await conn.fetch(
        """SELECT alert_id, district, raised_at, reason, substance, facility_id,
                  overdoses_in_window, window_start, window_end, state, late,
                  acknowledged_at, seconds_to_acknowledge, resolved_at
           FROM alerts
           WHERE ($1::text IS NULL OR district = $1)
             AND ($2::timestamptz IS NULL OR raised_at >= $2)
           ORDER BY raised_at DESC, alert_id
           LIMIT $3""",
        district,
        since,
        limit,
    )
    return [dict(r) for r in rows]
