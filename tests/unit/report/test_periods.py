"""Reporting periods and scopes: calendar periods contain their anchor and tile the calendar;
since-opening and custom ranges; bad input names the field."""

from __future__ import annotations

import itertools
from datetime import date, timedelta

import pytest

from services.projection.periods import (
    PeriodError,
    PeriodKind,
    opening_day,
    parse_scope,
    resolve_period,
    scope_districts,
    scope_facilities,
)
from services.projection.report.build import parse_request, street_from
from tests.unit.projection.factory import CITY


@pytest.mark.parametrize(
    ("kind", "anchor", "start", "end"),
    [
        (PeriodKind.WEEK, date(2026, 1, 1), date(2025, 12, 29), date(2026, 1, 4)),
        (PeriodKind.MONTH, date(2024, 2, 29), date(2024, 2, 1), date(2024, 2, 29)),
        (PeriodKind.MONTH, date(2026, 12, 31), date(2026, 12, 1), date(2026, 12, 31)),
        (PeriodKind.QUARTER, date(2026, 11, 29), date(2026, 10, 1), date(2026, 12, 31)),
        (PeriodKind.QUARTER, date(2026, 3, 31), date(2026, 1, 1), date(2026, 3, 31)),
        (PeriodKind.YEAR, date(2026, 6, 15), date(2026, 1, 1), date(2026, 12, 31)),
    ],
)
def test_calendar_periods(kind: PeriodKind, anchor: date, start: date, end: date) -> None:
    p = resolve_period(kind, anchor=anchor)
    assert (p.start, p.end) == (start, end)


@pytest.mark.parametrize("kind", [PeriodKind.WEEK, PeriodKind.MONTH, PeriodKind.QUARTER])
def test_consecutive_calendar_periods_tile_a_year(kind: PeriodKind) -> None:
    day, covered = date(2026, 1, 1), []
    while day.year == 2026:
        p = resolve_period(kind, anchor=day)
        assert p.start <= day <= p.end
        covered.append(p)
        day = p.end + timedelta(days=1)
    for a, b in itertools.pairwise(covered):
        assert b.start == a.end + timedelta(days=1)


def test_since_opening_and_custom() -> None:
    opened = date(2025, 9, 1)
    p = resolve_period(PeriodKind.SINCE_OPENING, anchor=date(2026, 2, 1), opened=opened)
    assert (p.start, p.end, p.days) == (opened, date(2026, 2, 1), 154)
    with pytest.raises(PeriodError) as e:
        resolve_period(PeriodKind.SINCE_OPENING, anchor=date(2026, 2, 1), opened=None)
    assert e.value.field == "period"
    with pytest.raises(PeriodError) as e:
        resolve_period(
            PeriodKind.CUSTOM, anchor=date(2026, 2, 1), start=date(2026, 2, 2), end=date(2026, 2, 1)
        )
    assert e.value.field == "from"


def test_scopes() -> None:
    assert scope_facilities(parse_scope("district:vesterbro", CITY), CITY) == [
        "halmtorv",
        "maendenes-hjem",
    ]
    assert scope_districts(parse_scope("room:halmtorv", CITY), CITY) == ["vesterbro"]
    assert len(scope_facilities(parse_scope("city", CITY), CITY)) == len(CITY.facilities)
    assert opening_day(parse_scope("district:vesterbro", CITY), CITY) == date(2025, 9, 1)
    assert opening_day(parse_scope("room:amager", CITY), CITY) is None
    for bad in ("room:nowhere", "district:", "town", "room:vesterbro"):
        with pytest.raises(PeriodError) as e:
            parse_scope(bad, CITY)
        assert e.value.field == "scope"


def test_public_variant_takes_closed_calendar_periods_only() -> None:
    today = date(2026, 5, 20)
    ok = parse_request(
        CITY, today, scope="city", period="quarter", variant="public", anchor=date(2026, 3, 9)
    )
    assert (ok.period.start, ok.period.end) == (date(2026, 1, 1), date(2026, 3, 31))
    with pytest.raises(PeriodError) as e:  # not closed yet: the figures would still change
        parse_request(CITY, today, scope="city", period="month", variant="public")
    assert e.value.field == "period"
    for period in ("custom", "since-opening"):
        with pytest.raises(PeriodError) as e:
            parse_request(
                CITY,
                today,
                scope="room:halmtorv",
                period=period,
                variant="public",
                start=date(2026, 5, 1) if period == "custom" else None,
                end=date(2026, 5, 2) if period == "custom" else None,
            )
        assert e.value.field == "period"
    internal = parse_request(
        CITY, today, scope="room:halmtorv", period="since-opening", variant="internal"
    )
    assert internal.period.start == date(2025, 9, 1)
    with pytest.raises(PeriodError) as e:
        parse_request(CITY, today, scope="city", period="month", variant="secret")
    assert e.value.field == "variant"


def test_since_opening_reads_a_baseline_before_the_opening() -> None:
    today = date(2026, 1, 10)  # halmtorv opened 2025-09-01 in the shipped city file
    since = parse_request(
        CITY, today, scope="room:halmtorv", period="since-opening", variant="internal"
    )
    assert street_from(since, CITY) == date(2025, 9, 1) - timedelta(days=since.period.days)
    month = parse_request(CITY, today, scope="room:halmtorv", period="month", variant="internal")
    assert street_from(month, CITY) == date(2026, 1, 1)


@pytest.mark.parametrize(
    ("period", "anchor", "start", "end", "field"),
    [
        ("month", date(9999, 12, 31), None, None, "anchor"),
        ("week", date(1, 1, 3), None, None, "anchor"),
        ("year", date(1999, 6, 1), None, None, "anchor"),
        ("custom", None, date(1, 1, 1), date(1, 1, 2), "from"),
    ],
)
def test_periods_outside_the_supported_years_are_refused(
    period: str, anchor: date | None, start: date | None, end: date | None, field: str
) -> None:
    with pytest.raises(PeriodError) as e:
        parse_request(
            CITY,
            date(2026, 5, 20),
            scope="city",
            period=period,
            variant="internal",
            anchor=anchor,
            start=start,
            end=end,
        )
    assert e.value.field == field
