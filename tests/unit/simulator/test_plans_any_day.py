"""The plan the end-to-end test runs (tests/integration/simulator) is as busy on any day and at
any hour: run at the real now and at every awkward instant of tests/clock.py."""

from __future__ import annotations

import math
from collections import Counter
from datetime import UTC, datetime

import pytest

from services.simulator.model import Service
from tests.unit.simulator.plans import HOURS, VISITS_PER_DAY, busy_plan

pytestmark = pytest.mark.clock


def test_the_busy_plan_touches_every_service_whatever_the_day() -> None:
    p = busy_plan(datetime.now(UTC))
    assert p.end is not None and p.end - p.start == (p.end - p.start).__class__(hours=HOURS)
    reports = list(p.reports())
    assert {r.service for r in reports} == set(Service)
    assert all(p.start <= r.at < p.end for r in reports)
    events = Counter(r.event for r in reports)
    assert events["visit.ended"] > 0 and events["street_needles.collected"] > 0
    # Arrivals follow the plan's own volume, not the calendar: within 5 sigma of the Poisson
    # mean (a 23- or 25-hour DST day moves the hourly rate by about 4 %).
    expected = VISITS_PER_DAY * HOURS / 24
    arrivals = events["visit.started"] + events["visit.refused"]
    assert abs(arrivals - expected) <= 5 * math.sqrt(expected), events
