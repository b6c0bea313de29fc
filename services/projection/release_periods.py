"""Public periods and when they are released (pure: no I/O).

A period is a calendar day, an ISO week (Monday to Sunday) or a calendar month in the city's time
zone. It is released ``delay_days`` after its last day at ``hour`` local time (default: the next
day at 06:00), never earlier: only closed periods are published, and late reports have that long
to arrive. What is released is frozen (see services.projection.public): a period always
publishes the same table.

Order: periods are decided in order of release; when two are released at the same moment the
shorter goes first (a Sunday, then its week, then a month ending that Sunday), so each decision
can take every earlier overlapping one into account (:func:`earlier_overlapping`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from enum import StrEnum
from zoneinfo import ZoneInfo


class PeriodKind(StrEnum):
    DAY = "day"
    WEEK = "week"
    MONTH = "month"


_RANK = {PeriodKind.DAY: 0, PeriodKind.WEEK: 1, PeriodKind.MONTH: 2}


@dataclass(frozen=True, order=True)
class Period:
    kind: PeriodKind
    start: date

    @classmethod
    def of(cls, kind: PeriodKind, start: date) -> Period:
        """The period of ``kind`` starting on ``start``; ValueError if it does not start there."""
        if kind is PeriodKind.WEEK and start.isoweekday() != 1:
            raise ValueError("a week starts on a Monday")
        if kind is PeriodKind.MONTH and start.day != 1:
            raise ValueError("a month starts on its first day")
        return cls(kind, start)

    @classmethod
    def containing(cls, kind: PeriodKind, day: date) -> Period:
        if kind is PeriodKind.DAY:
            return cls(kind, day)
        if kind is PeriodKind.WEEK:
            return cls(kind, day - timedelta(days=day.isoweekday() - 1))
        return cls(kind, day.replace(day=1))

    @property
    def end(self) -> date:
        """The last day (inclusive)."""
        if self.kind is PeriodKind.DAY:
            return self.start
        if self.kind is PeriodKind.WEEK:
            return self.start + timedelta(days=6)
        following = (self.start.replace(day=28) + timedelta(days=4)).replace(day=1)
        return following - timedelta(days=1)

    @property
    def name(self) -> str:
        """The period's id in cell keys: ``day:2026-11-20``."""
        return f"{self.kind.value}:{self.start.isoformat()}"

    def days(self) -> list[Period]:
        n = (self.end - self.start).days + 1
        return [Period(PeriodKind.DAY, self.start + timedelta(days=i)) for i in range(n)]

    def overlaps(self, other: Period) -> bool:
        return self.start <= other.end and other.start <= self.end


@dataclass(frozen=True)
class ReleaseRule:
    zone: ZoneInfo
    delay_days: int = 1
    hour: int = 6

    def release_time(self, period: Period) -> datetime:
        day = period.end + timedelta(days=self.delay_days)
        return datetime.combine(day, time(self.hour), self.zone)

    def released(self, period: Period, now: datetime) -> bool:
        return now >= self.release_time(period)

    def order(self, period: Period) -> tuple[datetime, int]:
        return self.release_time(period), _RANK[period.kind]

    def latest(self, kind: PeriodKind, now: datetime) -> Period:
        """The most recent released period of ``kind`` at ``now``."""
        local = now.astimezone(self.zone).date()
        candidate = Period.containing(kind, local)
        while not self.released(candidate, now):
            candidate = Period.containing(kind, candidate.start - timedelta(days=1))
        return candidate

    def earlier_overlapping(self, period: Period) -> list[Period]:
        """Released before ``period`` (or with it, but shorter) and overlapping it: its days,
        and the weeks / months that share a day with it. Sorted by release order."""
        found: set[Period] = set()
        if period.kind is not PeriodKind.DAY:
            found.update(period.days())
        for kind in (PeriodKind.WEEK, PeriodKind.MONTH):
            if kind is period.kind:
                continue
            p = Period.containing(kind, period.start)
            while p.start <= period.end:
                found.add(p)
                p = Period.containing(kind, p.end + timedelta(days=1))
        mine = self.order(period)
        return sorted((p for p in found if self.order(p) < mine), key=self.order)

    def audit_context(self, period: Period) -> list[Period]:
        """The released periods the audit of ``period`` loads, in release order: those
        overlapping it (:meth:`earlier_overlapping`), those overlapping any of these (a week
        across a month border brings the month before), the weeks of every month among them,
        and the days of every week and month (a week or month is the sum of its days).

        Every relation of a loaded week or month has all its cells loaded. Relations reaching
        further (a loaded day of the month before's first week, with its own month) are not part
        of this audit (docs/public-figures.md, "Known limits")."""
        found = set(self.earlier_overlapping(period))
        for p in list(found):
            found.update(self._overlapping_before(p, period))
        for p in [p for p in found if p.kind is PeriodKind.MONTH]:
            found.update(
                q for q in self._overlapping_before(p, period) if q.kind is PeriodKind.WEEK
            )
        for p in list(found):
            if p.kind is not PeriodKind.DAY:
                found.update(d for d in p.days() if self.order(d) < self.order(period))
        return sorted(found, key=self.order)

    def _overlapping_before(self, p: Period, before: Period) -> set[Period]:
        """Periods released before ``before`` that share a day with ``p`` (not ``p`` itself)."""
        found: set[Period] = set(p.days()) if p.kind is not PeriodKind.DAY else set()
        for kind in (PeriodKind.WEEK, PeriodKind.MONTH):
            q = Period.containing(kind, p.start)
            while q.start <= p.end:
                found.add(q)
                q = Period.containing(kind, q.end + timedelta(days=1))
        limit = self.order(before)
        return {q for q in found if q != p and self.order(q) < limit}
