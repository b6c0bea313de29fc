"""District days add up to city days; means are recomputed, medians supplied."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from services.projection.figures import (
    days_between,
    empty_day,
    mean_minutes,
    sum_days,
    to_json,
)


def test_city_day_is_the_sum_with_a_recomputed_mean() -> None:
    a, b = empty_day(), empty_day()
    a.update(
        visits=3,
        visits_completed=2,
        visit_seconds_total=Decimal(1200),
        visit_minutes_mean=Decimal(10),
        sharps_returned_kg=Decimal("0.1"),
    )
    b.update(
        visits=1,
        visits_completed=1,
        visit_seconds_total=Decimal(2400),
        visit_minutes_mean=Decimal(40),
        sharps_returned_kg=Decimal("0.2"),
    )
    a["refusals_by_reason"]["capacity"] = 2
    b["refusals_by_reason"]["capacity"] = 1
    city = sum_days([a, b], median=Decimal("12.50"))
    assert city["visits"] == 4
    assert city["visit_minutes_mean"] == Decimal("20.00")  # 3600 s / 3 visits, not (10+40)/2
    assert city["visit_minutes_median"] == Decimal("12.50")
    assert city["sharps_returned_kg"] == Decimal("0.3")
    assert city["refusals_by_reason"]["capacity"] == 3
    out = to_json(city)
    assert "visit_seconds_total" not in out and out["sharps_returned_kg"] == 0.3


def test_mean_rounding_and_empty() -> None:
    assert mean_minutes(Decimal(0), 0) is None
    assert mean_minutes(Decimal(61), 2) == Decimal("0.51")  # 0.508.. rounds half up


def test_days_between_is_inclusive() -> None:
    assert days_between(date(2026, 3, 28), date(2026, 3, 30)) == [
        date(2026, 3, 28),
        date(2026, 3, 29),
        date(2026, 3, 30),
    ]
