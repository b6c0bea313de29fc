"""Public periods: alignment, last day, release time (next day 06:00 local, DST included) and
the order in which overlapping periods are decided. Dates are fixed, never today."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from services.projection.release_periods import Period, PeriodKind, ReleaseRule

ZONE = ZoneInfo("Europe/Copenhagen")
RULE = ReleaseRule(ZONE)


def test_periods_start_where_they_must_and_end_on_their_last_day() -> None:
    assert Period.of(PeriodKind.WEEK, date(2029, 10, 1)).end == date(2029, 10, 7)
    assert Period.of(PeriodKind.MONTH, date(2028, 2, 1)).end == date(2028, 2, 29)
    assert Period.of(PeriodKind.MONTH, date(2029, 12, 1)).end == date(2029, 12, 31)
    with pytest.raises(ValueError, match="Monday"):
        Period.of(PeriodKind.WEEK, date(2029, 10, 2))
    with pytest.raises(ValueError, match="first day"):
        Period.of(PeriodKind.MONTH, date(2029, 10, 2))
    assert len(Period.of(PeriodKind.MONTH, date(2029, 10, 1)).days()) == 31


@pytest.mark.parametrize(
    "day",
    [date(2029, 3, 24), date(2029, 3, 25), date(2029, 10, 27), date(2029, 10, 28)],
    ids=["before-spring-dst", "spring-dst", "before-autumn-dst", "autumn-dst"],
)
def test_a_day_is_released_the_next_day_at_six_local_time(day: date) -> None:
    p = Period(PeriodKind.DAY, day)
    at = RULE.release_time(p)
    assert at.astimezone(ZONE).date() == day + timedelta(days=1) and at.astimezone(ZONE).hour == 6
    assert not RULE.released(p, at - timedelta(seconds=1))
    assert RULE.released(p, at)
    assert not RULE.released(p, datetime.combine(day, datetime.max.time(), ZONE))


def test_latest_released_periods_relative_to_now() -> None:
    now = datetime(2029, 10, 9, 5, 59, tzinfo=ZONE)  # Tuesday before 06:00
    assert RULE.latest(PeriodKind.DAY, now).start == date(2029, 10, 7)
    assert RULE.latest(PeriodKind.WEEK, now).start == date(2029, 10, 1)
    assert RULE.latest(PeriodKind.MONTH, now).start == date(2029, 9, 1)
    later = now.astimezone(UTC) + timedelta(minutes=1)
    assert RULE.latest(PeriodKind.DAY, later).start == date(2029, 10, 8)


def test_overlapping_periods_are_decided_shortest_first_in_release_order() -> None:
    week = Period.of(PeriodKind.WEEK, date(2029, 10, 29))  # Oct 29 .. Nov 4
    earlier = RULE.earlier_overlapping(week)
    assert [p for p in earlier if p.kind is PeriodKind.DAY] == week.days()
    assert Period(PeriodKind.MONTH, date(2029, 10, 1)) in earlier  # released Nov 1
    assert Period(PeriodKind.MONTH, date(2029, 11, 1)) not in earlier  # released Dec 1
    month = Period.of(PeriodKind.MONTH, date(2029, 10, 1))
    assert week not in RULE.earlier_overlapping(month)  # the week is released after it
    assert Period.of(PeriodKind.WEEK, date(2029, 10, 22)) in RULE.earlier_overlapping(month)
    assert RULE.earlier_overlapping(Period(PeriodKind.DAY, date(2029, 10, 3))) == []


def test_a_months_audit_reaches_the_month_before_through_the_week_across_their_border() -> None:
    month = Period.of(PeriodKind.MONTH, date(2029, 11, 1))  # Nov 2029 starts on a Thursday
    context = RULE.audit_context(month)
    across = Period.of(PeriodKind.WEEK, date(2029, 10, 29))  # Oct 29 .. Nov 4
    before = Period.of(PeriodKind.MONTH, date(2029, 10, 1))
    assert across in context and before in context  # the month before, through that week
    assert set(before.days()) <= set(context) and set(across.days()) <= set(context)
    first_of_before = Period.of(PeriodKind.WEEK, date(2029, 10, 1))
    assert first_of_before in context  # a week of the month before, with its days
    # every loaded week or month comes with all its days: no relation of it misses a cell
    for p in context:
        if p.kind is not PeriodKind.DAY:
            assert set(p.days()) <= set(context), p
    # nothing released after the month (the week across its end, the next month)
    assert Period.of(PeriodKind.WEEK, date(2029, 11, 26)) not in context
    assert all(RULE.order(p) < RULE.order(month) for p in context)
    assert RULE.audit_context(Period(PeriodKind.DAY, date(2029, 11, 3))) == []
