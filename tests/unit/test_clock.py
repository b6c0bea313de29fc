"""The awkward instants of tests/clock.py are what they claim to be, and a ``clock`` test really
runs at them (with asyncio's timers unaffected)."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, date, datetime, timedelta

import pytest

from services.simulator.model import is_payday_surge, last_banking_day
from services.simulator.params import SimParams
from tests.clock import AWKWARD_DAYS, AWKWARD_TIMES, ZONE, awkward_instants, parse_instants


def hours_in(day: date) -> float:
    start = datetime.combine(day, datetime.min.time(), tzinfo=ZONE)
    end = datetime.combine(day + timedelta(days=1), datetime.min.time(), tzinfo=ZONE)
    return (end.astimezone(UTC) - start.astimezone(UTC)).total_seconds() / 3600


def is_last_sunday(day: date) -> bool:
    return day.weekday() == 6 and (day + timedelta(days=7)).month != day.month


def test_the_awkward_days_are_awkward() -> None:
    d = AWKWARD_DAYS
    assert d["sunday"].weekday() == 6
    assert d["dst-spring"].month == 3 and is_last_sunday(d["dst-spring"])
    assert hours_in(d["dst-spring"]) == 23
    assert d["dst-autumn"].month == 10 and is_last_sunday(d["dst-autumn"])
    assert hours_in(d["dst-autumn"]) == 25
    assert (d["new-years-eve"].month, d["new-years-eve"].day) == (12, 31)
    assert (d["leap-day"].month, d["leap-day"].day) == (2, 29)
    payday = d["payday"]
    assert payday == last_banking_day(payday.year, payday.month)
    through = SimParams().payday_surge_through_day
    assert is_payday_surge(payday, through)
    assert not is_payday_surge(payday - timedelta(days=1), through)
    assert len(awkward_instants()) == len(AWKWARD_DAYS) * len(AWKWARD_TIMES)


def test_dcr_today_syntax() -> None:
    assert parse_instants("2028-02-29T23:30") == [datetime(2028, 2, 29, 23, 30, tzinfo=ZONE)]
    assert [t.hour for t in parse_instants("2027-03-28")] == [0, 23]
    assert parse_instants("awkward") == awkward_instants()
    with pytest.raises(ValueError):
        parse_instants(" , ")


@pytest.mark.clock
async def test_a_clock_test_runs_at_its_instant(_travel: datetime | None) -> None:
    now = datetime.now(UTC)
    if _travel is None:
        assert abs(now.timestamp() - time.time()) < 1
        return
    assert timedelta(0) <= now - _travel < timedelta(minutes=5)
    assert now.astimezone(ZONE).date() == _travel.date()
    t0 = time.monotonic()
    await asyncio.sleep(0.01)  # the event loop's clock still runs
    assert time.monotonic() > t0
