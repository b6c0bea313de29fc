"""An in-memory :class:`~services.projection.read_port.ReadModels` for unit tests of the read
API: tests put rows in, the API reads them through the port (state-based, no database)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from services.projection.figures import Day
from services.projection.read_port import LiveCounts, StockRow


@dataclass
class FakeReadModels:
    days: dict[tuple[str, date], Day] = field(default_factory=dict)
    city: dict[date, tuple[int, Decimal | None]] = field(default_factory=dict)
    live: dict[str, LiveCounts] = field(default_factory=dict)
    stock: dict[str, list[StockRow]] = field(default_factory=dict)
    alert_rows: list[dict[str, Any]] = field(default_factory=list)

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
