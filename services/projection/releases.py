"""Releasing public periods: freeze, decide (in a worker thread), store once (PostgreSQL).

:meth:`Releaser.get` returns a released period's :class:`~.public.Release`, deciding it first if
no process did yet, after every earlier overlapping period (recursively). The first decision
stored wins (``ON CONFLICT DO NOTHING`` then read back), so concurrent processes agree.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

import asyncpg

from services.projection import queries
from services.projection.figures import empty_day, sum_days, to_json
from services.projection.public import SECONDS, Figures, Release, decide, sum_tables
from services.projection.release_periods import Period, PeriodKind, ReleaseRule
from services.projection.store import Conn
from services.projection.suppression import CITY


class NotReleased(Exception):
    """The period is not public (yet, or before public figures began)."""


@dataclass
class Releaser:
    pool: asyncpg.Pool
    districts: Sequence[str]
    rule: ReleaseRule
    threshold: int
    since: date
    clock: Callable[[], datetime]
    _lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    def public(self, period: Period, now: datetime) -> bool:
        return period.start >= self.since and self.rule.released(period, now)

    async def get(self, period: Period) -> Release:
        now = self.clock()
        if not self.public(period, now):
            raise NotReleased(period.name)
        async with self.pool.acquire() as conn:
            found = await _load(conn, period)
        if found is not None:
            return found
        async with self._lock:
            return await self._ensure(period, now)

    async def prepare_latest(self) -> list[Period]:
        """Decide the most recent released day, week and month if nobody did yet (so a first
        request does not wait for a week's or month's audit). Returns the periods decided."""
        now = self.clock()
        done: list[Period] = []
        for kind in PeriodKind:
            p = self.rule.latest(kind, now)
            if self.public(p, now):
                await self.get(p)
                done.append(p)
        return done

    async def _ensure(self, period: Period, now: datetime) -> Release:
        async with self.pool.acquire() as conn:
            found = await _load(conn, period)
        if found is not None:
            return found
        earlier: dict[Period, Release] = {}
        for p in self.rule.audit_context(period):
            if p.start >= self.since:
                earlier[p] = await self._ensure(p, now)
        if period.kind is PeriodKind.DAY:
            tables = await self._day_figures(period.start)
        else:
            days = [earlier[d] for d in period.days()]
            tables = {t: sum_tables([d.tables[t] for d in days]) for t in (CITY, *self.districts)}
        release = await asyncio.to_thread(
            decide, period, tables, list(earlier.values()), self.districts, self.threshold, now
        )
        async with self.pool.acquire() as conn:
            await _store(conn, release)
            stored = await _load(conn, period)
        assert stored is not None
        return stored

    async def _day_figures(self, day: date) -> dict[str, Figures]:
        async with self.pool.acquire() as conn:
            found = await queries.district_days(conn, list(self.districts), day, day)
            city_day = (await queries.city_days(conn, day, day)).get(day)
        per = {d: found.get((d, day)) or empty_day() for d in self.districts}
        city = sum_days(per.values(), city_day[1] if city_day else None)
        out: dict[str, Figures] = {}
        for t, figures in ((CITY, city), *per.items()):
            out[t] = {**to_json(figures), SECONDS: float(figures[SECONDS])}
        return out


async def _load(conn: Conn, period: Period) -> Release | None:
    row = await conn.fetchrow(
        """SELECT threshold, withheld, tables, hidden, released_at FROM public_releases
           WHERE kind = $1 AND period_start = $2""",
        period.kind.value,
        period.start,
    )
    if row is None:
        return None
    hidden: list[list[str]] = json.loads(row["hidden"])
    return Release(
        period=period,
        threshold=row["threshold"],
        tables=json.loads(row["tables"]),
        hidden=frozenset((t, f) for t, f in hidden),
        withheld=row["withheld"],
        released_at=row["released_at"],
    )


async def _store(conn: Conn, r: Release) -> None:
    hidden: list[Any] = sorted([t, f] for t, f in r.hidden)
    await conn.execute(
        """INSERT INTO public_releases
               (kind, period_start, period_end, threshold, withheld, tables, hidden, released_at)
           VALUES ($1, $2, $3, $4, $5, $6::jsonb, $7::jsonb, $8)
           ON CONFLICT (kind, period_start) DO NOTHING""",
        r.period.kind.value,
        r.period.start,
        r.period.end,
        r.threshold,
        r.withheld,
        json.dumps(r.tables),
        json.dumps(hidden),
        r.released_at,
    )
