"""The read-model port of the internal read API (:mod:`.api`, :mod:`.period_api`,
:mod:`.report_api`): what it asks the read models.

:class:`ReadModels` is the port; :class:`PgReadModels` answers it from PostgreSQL
(:mod:`.queries`, :mod:`.period_queries`, :func:`.report.build.read_facts`); the unit tests
answer it from memory (``tests/unit/projection/fake_reads.py``) so the API's rules (ranges,
roles, shapes, suppression of a public report) are tested without a database.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any, Protocol

import asyncpg

from services.projection import period_queries, queries
from services.projection.figures import Day
from services.projection.period_queries import RoomCells, StreetAreaDay
from services.projection.report.build import ReportFacts, ReportRequest, read_facts
from shared.city import City


@dataclass(frozen=True, slots=True)
class LiveCounts:
    """A room right now: booths in use (recent open visits), today's visits and refusals."""

    in_use: int
    visits_today: int
    refusals_today: int
    last_event_time: datetime | None


@dataclass(frozen=True, slots=True)
class StockRow:
    """One item: its latest count (0 and None: never counted), the movements after that count,
    and the quantity dispensed in the 7 days before now."""

    item: str
    counted: int
    counted_at: datetime | None
    moved: int
    used_7d: int


class ReadModels(Protocol):
    async def district_days(
        self, districts: Sequence[str], start: date, end: date
    ) -> dict[tuple[str, date], Day]:
        """Figures per (district, day) that have any data in [start, end]."""
        ...

    async def city_days(self, start: date, end: date) -> dict[date, tuple[int, Decimal | None]]:
        """City-wide (distinct clients, median minutes) per day with data."""
        ...

    async def facility_live(
        self, facility: str, today: date, now: datetime, stale_hours: float
    ) -> LiveCounts: ...

    async def facility_stock(self, facility: str, now: datetime) -> list[StockRow]:
        """Every item counted or moved at ``facility``, by name."""
        ...

    async def alerts(
        self, district: str | None, since: datetime | None, limit: int
    ) -> list[dict[str, Any]]:
        """Alert rows (the ``alerts`` read model), newest first, at most ``limit``."""
        ...

    async def room_cells(
        self, facilities: Sequence[str], start: date, end: date
    ) -> dict[str, RoomCells]:
        """Per room: its amounts summed over [start, end] (people distinct over the range)."""
        ...

    async def room_days(
        self, facility: str, start: date, end: date
    ) -> dict[date, dict[str, Decimal]]:
        """One room's amounts per day with data in [start, end]."""
        ...

    async def street_area_days(
        self, districts: Sequence[str], start: date, end: date
    ) -> list[StreetAreaDay]:
        """Street collections per day, district and area in [start, end], in that order."""
        ...

    async def report_facts(self, city: City, req: ReportRequest, group: str) -> ReportFacts:
        """Everything a report reads, from one snapshot of the read models."""
        ...


class PgReadModels:
    """:class:`ReadModels` over a PostgreSQL pool (one pooled connection per question)."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def district_days(
        self, districts: Sequence[str], start: date, end: date
    ) -> dict[tuple[str, date], Day]:
        async with self._pool.acquire() as conn:
            return await queries.district_days(conn, list(districts), start, end)

    async def city_days(self, start: date, end: date) -> dict[date, tuple[int, Decimal | None]]:
        async with self._pool.acquire() as conn:
            return await queries.city_days(conn, start, end)

    async def facility_live(
        self, facility: str, today: date, now: datetime, stale_hours: float
    ) -> LiveCounts:
        async with self._pool.acquire() as conn:
            live = await queries.facility_live(conn, facility, today, now, stale_hours)
        return LiveCounts(
            in_use=int(live["in_use"]),
            visits_today=int(live["visits_today"]),
            refusals_today=int(live["refusals_today"]),
            last_event_time=live["last_event_time"],
        )

    async def facility_stock(self, facility: str, now: datetime) -> list[StockRow]:
        async with self._pool.acquire() as conn:
            rows = await queries.facility_stock(conn, facility, now)
        return [
            StockRow(
                item=r["item"],
                counted=int(r["counted"]),
                counted_at=r["counted_at"],
                moved=int(r["moved"]),
                used_7d=int(r["used_7d"]),
            )
            for r in rows
        ]

    async def alerts(
        self, district: str | None, since: datetime | None, limit: int
    ) -> list[dict[str, Any]]:
        async with self._pool.acquire() as conn:
            return await queries.alerts(conn, district, since, limit)

    async def room_cells(
        self, facilities: Sequence[str], start: date, end: date
    ) -> dict[str, RoomCells]:
        async with self._pool.acquire() as conn:
            return await period_queries.room_cells(conn, list(facilities), start, end)

    async def room_days(
        self, facility: str, start: date, end: date
    ) -> dict[date, dict[str, Decimal]]:
        async with self._pool.acquire() as conn:
            return await period_queries.room_days(conn, facility, start, end)

    async def street_area_days(
        self, districts: Sequence[str], start: date, end: date
    ) -> list[StreetAreaDay]:
        async with self._pool.acquire() as conn:
            return await period_queries.street_area_days(conn, list(districts), start, end)

    async def report_facts(self, city: City, req: ReportRequest, group: str) -> ReportFacts:
        async with self._pool.acquire() as conn:
            return await read_facts(conn, city, req, group=group)
