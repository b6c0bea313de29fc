"""An in-memory :class:`~services.projection.read_port.ReadModels` for unit tests of the read
API: tests put rows in, the API reads them through the port (state-based, no database).

Room amounts are kept per (facility, day); over a range they are summed, so ``people`` over a
range is the sum of the days' (a test wanting distinct people over a range puts them on one day).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from services.projection.api import ReadContext
from services.projection.figures import Day
from services.projection.period_queries import (
    DaySeries,
    LogPosition,
    RoomCells,
    StreetArea,
    StreetAreaDay,
    StreetDay,
)
from services.projection.periods import scope_districts, scope_facilities
from services.projection.read_port import LiveCounts, StockRow
from services.projection.report.build import ReportFacts, ReportRequest, street_from
from services.projection.runner import Freshness
from services.projection.settings import ProjectionSettings
from shared.city import City


@dataclass
class FakeReadModels:
    days: dict[tuple[str, date], Day] = field(default_factory=dict)
    city: dict[date, tuple[int, Decimal | None]] = field(default_factory=dict)
    live: dict[str, LiveCounts] = field(default_factory=dict)
    stock: dict[str, list[StockRow]] = field(default_factory=dict)
    alert_rows: list[dict[str, Any]] = field(default_factory=list)
    #: (facility, day) -> the room's amounts that day (cells as in period_figures)
    room_amounts: dict[tuple[str, date], dict[str, Decimal]] = field(default_factory=dict)
    street: list[StreetAreaDay] = field(default_factory=list)
    position: LogPosition = field(default_factory=lambda: LogPosition((), None))

    async def district_days(
        self, districts: Sequence[str], start: date, end: date
    ) -> dict[tuple[str, date], Day]:
        return {k: v for k, v in self.days.items() if k[0] in districts and start <= k[1] <= end}

    async def city_days(self, start: date, end: date) -> dict[date, tuple[int, Decimal | None]]:
        return {d: v for d, v in self.city.items() if start <= d <= end}

    async def facility_live(
        self, facility: str, today: date, now: datetime, stale_hours: float
    ) -> LiveCounts:
        return self.live.get(facility, LiveCounts(0, 0, 0, None))

    async def facility_stock(self, facility: str, now: datetime) -> list[StockRow]:
        return sorted(self.stock.get(facility, []), key=lambda r: r.item)

    async def alerts(
        self, district: str | None, since: datetime | None, limit: int
    ) -> list[dict[str, Any]]:
        rows = [
            a
            for a in self.alert_rows
            if (district is None or a["district"] == district)
            and (since is None or a["raised_at"] >= since)
        ]
        rows.sort(key=lambda a: (-a["raised_at"].timestamp(), a["alert_id"]))
        return rows[:limit]

    async def room_cells(
        self, facilities: Sequence[str], start: date, end: date
    ) -> dict[str, RoomCells]:
        out: dict[str, RoomCells] = {f: {} for f in facilities}
        for (facility, day), cells in self.room_amounts.items():
            if facility in out and start <= day <= end:
                for name, amount in cells.items():
                    out[facility][name] = out[facility].get(name, Decimal(0)) + amount
        return out

    async def room_days(
        self, facility: str, start: date, end: date
    ) -> dict[date, dict[str, Decimal]]:
        return {
            day: dict(cells)
            for (f, day), cells in self.room_amounts.items()
            if f == facility and start <= day <= end
        }

    async def street_area_days(
        self, districts: Sequence[str], start: date, end: date
    ) -> list[StreetAreaDay]:
        rows = [s for s in self.street if s.district in districts and start <= s.day <= end]
        return sorted(rows, key=lambda s: (s.day, s.district, s.area))

    async def report_facts(self, city: City, req: ReportRequest, group: str) -> ReportFacts:
        start, end = req.period.start, req.period.end
        facilities = scope_facilities(req.scope, city)
        districts = scope_districts(req.scope, city)
        visits: dict[date, int] = {}
        needles: dict[date, int] = {}
        for (facility, day), cells in self.room_amounts.items():
            if facility in facilities and start <= day <= end:
                visits[day] = visits.get(day, 0) + int(cells.get("visits", 0))
                needles[day] = needles.get(day, 0) + int(cells.get("supplies_dispensed.needles", 0))
        street: dict[date, StreetDay] = {}
        for s in await self.street_area_days(districts, street_from(req, city), end):
            old = street.get(s.day, StreetDay(0, 0, Decimal(0)))
            street[s.day] = StreetDay(
                old.reports + s.reports, old.needles + s.needles, old.kg + s.kg
            )
        areas: dict[tuple[str, str], StreetArea] = {}
        for s in await self.street_area_days(districts, start, end):
            a = areas.get((s.district, s.area), StreetArea(s.district, s.area, 0, 0, Decimal(0)))
            areas[(s.district, s.area)] = StreetArea(
                s.district, s.area, a.reports + s.reports, a.needles + s.needles, a.kg + s.kg
            )
        alerts = sorted(
            (
                a
                for a in self.alert_rows
                if a["district"] in districts
                and start <= a["raised_at"].astimezone(city.zone).date() <= end
            ),
            key=lambda a: (a["raised_at"], a["alert_id"]),
        )
        return ReportFacts(
            rooms=await self.room_cells([f.id for f in city.facilities], start, end),
            series=DaySeries(
                {d: n for d, n in visits.items() if n}, {d: n for d, n in needles.items() if n}
            ),
            street=street,
            areas=sorted(areas.values(), key=lambda a: (-a.kg, a.district, a.area)),
            alerts=alerts,
            position=self.position,
        )


def read_context(reads: FakeReadModels, city: City, now: datetime, fresh: Freshness) -> ReadContext:
    """A read API context over ``reads`` at the fixed instant ``now`` (default settings)."""

    async def freshness() -> Freshness:
        return fresh

    return ReadContext(
        pool=None,  # type: ignore[arg-type]  # every route reads through ``reads``
        reads=reads,
        city=city,
        settings=ProjectionSettings(),
        freshness=freshness,
        clock=lambda: now,
    )
