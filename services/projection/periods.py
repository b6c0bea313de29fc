"""Reporting periods and scopes (pure).

A period is an inclusive range of local calendar days. Calendar periods (ISO week Monday to
Sunday, month, quarter, year) are the ones containing an anchor day; ``since-opening`` runs from
the scope's opening day to the anchor; ``custom`` is any ``from``..``to``.

A scope is the whole city, a district or one room; :func:`scope_facilities` says which rooms it
covers and :func:`scope_districts` which districts' street collections belong to it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from enum import StrEnum

from shared.city import City


class PeriodKind(StrEnum):
    WEEK = "week"
    MONTH = "month"
    QUARTER = "quarter"
    YEAR = "year"
    SINCE_OPENING = "since-opening"
    CUSTOM = "custom"


#: Periods that tile the calendar: two of them never partly overlap (no subtraction attack).
CALENDAR_PERIODS = frozenset(
    {PeriodKind.WEEK, PeriodKind.MONTH, PeriodKind.QUARTER, PeriodKind.YEAR}
)


class PeriodError(ValueError):
    """A period or scope that cannot be resolved; ``field`` names the offending input."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


@dataclass(frozen=True, slots=True)
class Period:
    kind: PeriodKind
    start: date
    end: date

    @property
    def days(self) -> int:
        return (self.end - self.start).days + 1

    @property
    def label(self) -> str:
        s, e = self.start, self.end
        if self.kind is PeriodKind.WEEK:
            iso = s.isocalendar()
            return f"week {iso.week} of {iso.year} ({s.isoformat()} to {e.isoformat()})"
        if self.kind is PeriodKind.MONTH:
            return s.strftime("%B %Y")
        if self.kind is PeriodKind.QUARTER:
            return f"Q{(s.month - 1) // 3 + 1} {s.year}"
        if self.kind is PeriodKind.YEAR:
            return str(s.year)
        return f"{s.isoformat()} to {e.isoformat()}"


@dataclass(frozen=True, slots=True)
class Scope:
    """``city``, ``district:<id>`` or ``room:<id>``."""

    kind: str
    id: str | None = None

    @property
    def key(self) -> str:
        return self.kind if self.id is None else f"{self.kind}:{self.id}"


def parse_scope(text: str, city: City) -> Scope:
    if text == "city":
        return Scope("city")
    kind, _, ident = text.partition(":")
    if kind == "district" and ident in city.district_by_id:
        return Scope("district", ident)
    if kind == "room" and ident in city.facility_by_id:
        return Scope("room", ident)
    raise PeriodError("scope", "expected city, district:<known id> or room:<known id>")


def scope_facilities(scope: Scope, city: City) -> list[str]:
    if scope.kind == "room":
        assert scope.id is not None
        return [scope.id]
    if scope.kind == "district":
        return [f.id for f in city.facilities if f.district == scope.id]
    return [f.id for f in city.facilities]


def scope_districts(scope: Scope, city: City) -> list[str]:
    if scope.kind == "room":
        assert scope.id is not None
        district = city.district_of(scope.id)
        assert district is not None
        return [district]
    if scope.kind == "district":
        assert scope.id is not None
        return [scope.id]
    return [d.id for d in city.districts]


def scope_name(scope: Scope, city: City) -> str:
    if scope.kind == "room":
        assert scope.id is not None
        return city.facility_by_id[scope.id].name
    if scope.kind == "district":
        assert scope.id is not None
        return city.district_by_id[scope.id].name
    return "Copenhagen (all rooms)"


def opening_day(scope: Scope, city: City) -> date | None:
    """The first day any room of the scope was open (None: none has opened)."""
    days = [f.opened for f in city.facilities if f.id in scope_facilities(scope, city) and f.opened]
    return min(days) if days else None


def resolve_period(
    kind: PeriodKind,
    *,
    anchor: date,
    start: date | None = None,
    end: date | None = None,
    opened: date | None = None,
) -> Period:
    """The period of ``kind`` containing ``anchor`` (custom: ``start``..``end``)."""
    try:
        return _resolve(kind, anchor, start, end, opened)
    except (OverflowError, ValueError) as exc:
        if isinstance(exc, PeriodError):
            raise
        raise PeriodError("anchor", "the period runs outside the calendar") from None


def last_closed_anchor(kind: PeriodKind, today: date) -> date:
    """An anchor whose period of ``kind`` ended before ``today``: the last closed week, month,
    quarter or year (since-opening: up to yesterday)."""
    if kind in CALENDAR_PERIODS:
        current = _resolve(kind, today, None, None, None)
        return current.start - timedelta(days=1) if current.end >= today else today
    return today - timedelta(days=1)


def _resolve(
    kind: PeriodKind, anchor: date, start: date | None, end: date | None, opened: date | None
) -> Period:
    if kind is PeriodKind.WEEK:
        first = anchor - timedelta(days=anchor.weekday())
        return Period(kind, first, first + timedelta(days=6))
    if kind is PeriodKind.MONTH:
        first = anchor.replace(day=1)
        return Period(kind, first, _next_month(first) - timedelta(days=1))
    if kind is PeriodKind.QUARTER:
        first = date(anchor.year, 3 * ((anchor.month - 1) // 3) + 1, 1)
        last = _next_month(_next_month(_next_month(first))) - timedelta(days=1)
        return Period(kind, first, last)
    if kind is PeriodKind.YEAR:
        return Period(kind, date(anchor.year, 1, 1), date(anchor.year, 12, 31))
    if kind is PeriodKind.SINCE_OPENING:
        if opened is None:
            raise PeriodError("period", "no room of this scope has an opening date")
        if opened > anchor:
            raise PeriodError("period", "the scope opened after the end of the period")
        return Period(kind, opened, anchor)
    if start is None or end is None:
        raise PeriodError("from", "a custom period needs 'from' and 'to'")
    if start > end:
        raise PeriodError("from", "must not be after 'to'")
    return Period(kind, start, end)


def _next_month(first: date) -> date:
    return date(first.year + first.month // 12, first.month % 12 + 1, 1)
