"""Read-side SQL for periods (asyncpg): per-room totals over a day range, daily series, street
collections by area, alerts and the event-log position. Returns plain values; the arithmetic
(adding rooms up, suppression) is pure, in :mod:`.period_figures`.

Visit figures come from the ``visits`` facts over the whole range: ``people`` is the number of
distinct pseudonyms of the room in the range (a person visiting on ten days counts once), never
a sum of daily unique counts. Pseudonyms are keyed per facility (shared.privacy), so the people
of several rooms add up exactly.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from services.projection.schema import Source, room_measures
from services.projection.store import Conn

#: The visit figures the queries below count (each a column of their SELECT).
VISIT_FIGURES: tuple[str, ...] = room_measures(source=Source.VISITS)

RoomCells = dict[str, Decimal]  # "measure" or "measure.key" -> amount


def _cell(row: Any) -> str:
    """The cell name of a room_daily row: ``measure`` or ``measure.key``."""
    return str(row["measure"]) if row["key"] == "" else f"{row['measure']}.{row['key']}"


async def room_cells(
    conn: Conn, facilities: list[str], start: date, end: date
) -> dict[str, RoomCells]:
    """Per room: the visit figures and every ``room_daily`` amount summed over [start, end]
    (keyed measures as ``measure.key``; zeros are absent)."""
    out: dict[str, RoomCells] = {f: {} for f in facilities}
    rows = await conn.fetch(
        """SELECT facility, measure, key, sum(amount) AS amount FROM room_daily
           WHERE facility = ANY($1::text[]) AND day BETWEEN $2 AND $3
           GROUP BY facility, measure, key""",
        facilities,
        start,
        end,
    )
    for r in rows:
        out[r["facility"]][_cell(r)] = Decimal(r["amount"])
    visits = await conn.fetch(
        """SELECT facility, count(*) AS visits,
                  count(DISTINCT client_pseudonym) AS people,
                  count(DISTINCT client_pseudonym) FILTER (WHERE first_visit) AS new_people,
                  count(*) FILTER (WHERE assisted_injection) AS assisted_injections
           FROM visits
           WHERE facility = ANY($1::text[]) AND day BETWEEN $2 AND $3
             AND start_time IS NOT NULL
           GROUP BY facility""",
        facilities,
        start,
        end,
    )
    for r in visits:
        for name in VISIT_FIGURES:
            out[r["facility"]][name] = Decimal(r[name])
    return out


@dataclass(frozen=True, slots=True)
class DaySeries:
    """Per local day of the range (zeros absent): visits and needles handed out."""

    visits: dict[date, int]
    needles: dict[date, int]


async def day_series(conn: Conn, facilities: list[str], start: date, end: date) -> DaySeries:
    visits = await conn.fetch(
        """SELECT day, count(*) AS n FROM visits
           WHERE facility = ANY($1::text[]) AND day BETWEEN $2 AND $3
             AND start_time IS NOT NULL
           GROUP BY day""",
        facilities,
        start,
        end,
    )
    needles = await conn.fetch(
        """SELECT day, sum(amount) AS n FROM room_daily
           WHERE facility = ANY($1::text[]) AND day BETWEEN $2 AND $3
             AND measure = 'supplies_dispensed' AND key = 'needles'
           GROUP BY day""",
        facilities,
        start,
        end,
    )
    return DaySeries(
        {r["day"]: int(r["n"]) for r in visits}, {r["day"]: int(r["n"]) for r in needles}
    )


@dataclass(frozen=True, slots=True)
class StreetDay:
    reports: int
    needles: int
    kg: Decimal


async def street_days(
    conn: Conn, districts: list[str], start: date, end: date
) -> dict[date, StreetDay]:
    """Street collections of the districts per day (days without a report are absent)."""
    rows = await conn.fetch(
        """SELECT day, sum(reports) AS reports, sum(needles) AS needles, sum(kg) AS kg
           FROM street_collections_daily
           WHERE district = ANY($1::text[]) AND day BETWEEN $2 AND $3
           GROUP BY day""",
        districts,
        start,
        end,
    )
    return {r["day"]: StreetDay(int(r["reports"]), int(r["needles"]), r["kg"]) for r in rows}


@dataclass(frozen=True, slots=True)
class StreetArea:
    district: str
    area: str
    reports: int
    needles: int
    kg: Decimal


async def street_areas(
    conn: Conn, districts: list[str], start: date, end: date
) -> list[StreetArea]:
    """Street collections per district and area over [start, end], heaviest first."""
    rows = await conn.fetch(
        """SELECT district, area, sum(reports) AS reports, sum(needles) AS needles,
                  sum(kg) AS kg
           FROM street_collections_daily
           WHERE district = ANY($1::text[]) AND day BETWEEN $2 AND $3
           GROUP BY district, area
           ORDER BY sum(kg) DESC, district, area""",
        districts,
        start,
        end,
    )
    return [
        StreetArea(r["district"], r["area"], int(r["reports"]), int(r["needles"]), r["kg"])
        for r in rows
    ]


async def alerts_raised(
    conn: Conn, districts: list[str], start: date, end: date, zone: ZoneInfo
) -> list[dict[str, Any]]:
    """Drug alerts raised in the districts on the local days [start, end], oldest first."""
    rows = await conn.fetch(
        """SELECT alert_id, district, raised_at, reason, substance, facility_id
           FROM alerts
           WHERE district = ANY($1::text[])
             AND (raised_at AT TIME ZONE $4)::date BETWEEN $2 AND $3
           ORDER BY raised_at, alert_id""",
        districts,
        start,
        end,
        zone.key,
    )
    return [dict(r) for r in rows]


@dataclass(frozen=True, slots=True)
class LogPosition:
    """Where in the event log the read models are: next offset per topic partition, and the
    Kafka time of the newest applied record (the data are complete up to it)."""

    offsets: tuple[tuple[str, int, int], ...]
    complete_until: datetime | None

    @property
    def records(self) -> int:
        return sum(o for _, _, o in self.offsets)


async def log_position(conn: Conn, group: str) -> LogPosition:
    rows = await conn.fetch(
        """SELECT topic, partition, next_offset, last_record_time FROM projection_offsets
           WHERE consumer_group = $1 ORDER BY topic, partition""",
        group,
    )
    times = [r["last_record_time"] for r in rows if r["last_record_time"] is not None]
    return LogPosition(
        tuple((r["topic"], r["partition"], r["next_offset"]) for r in rows),
        max(times) if times else None,
    )


async def room_days(
    conn: Conn, facility: str, start: date, end: date
) -> dict[date, dict[str, Decimal]]:
    """One room's amounts per local day in [start, end] (days without data are absent): the
    visit figures of the day (people: distinct pseudonyms that day) and its room_daily rows."""
    out: dict[date, dict[str, Decimal]] = {}
    rows = await conn.fetch(
        """SELECT day, measure, key, amount FROM room_daily
           WHERE facility = $1 AND day BETWEEN $2 AND $3""",
        facility,
        start,
        end,
    )
    for r in rows:
        out.setdefault(r["day"], {})[_cell(r)] = Decimal(r["amount"])
    visits = await conn.fetch(
        """SELECT day, count(*) AS visits, count(DISTINCT client_pseudonym) AS people,
                  count(DISTINCT client_pseudonym) FILTER (WHERE first_visit) AS new_people,
                  count(*) FILTER (WHERE assisted_injection) AS assisted_injections
           FROM visits
           WHERE facility = $1 AND day BETWEEN $2 AND $3 AND start_time IS NOT NULL
           GROUP BY day""",
        facility,
        start,
        end,
    )
    for r in visits:
        day = out.setdefault(r["day"], {})
        for name in VISIT_FIGURES:
            day[name] = Decimal(r[name])
    return out


@dataclass(frozen=True, slots=True)
class StreetAreaDay:
    day: date
    district: str
    area: str
    reports: int
    needles: int
    kg: Decimal


async def street_area_days(
    conn: Conn, districts: list[str], start: date, end: date
) -> list[StreetAreaDay]:
    """Street collections per district, area and day in [start, end], by day, district, area."""
    rows = await conn.fetch(
        """SELECT district, area, day, reports, needles, kg FROM street_collections_daily
           WHERE district = ANY($1::text[]) AND day BETWEEN $2 AND $3
           ORDER BY day, district, area""",
        districts,
        start,
        end,
    )
    return [
        StreetAreaDay(
            r["day"], r["district"], r["area"], int(r["reports"]), int(r["needles"]), r["kg"]
        )
        for r in rows
    ]
