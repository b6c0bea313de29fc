"""Days from their stored rows, sums over a vocabulary that changed, and the rounding of means."""

from __future__ import annotations

from decimal import Decimal

from services.projection.figures import day_from_rows, empty_day, mean_minutes, sum_days


def test_a_day_is_its_row_and_its_breakdown_rows() -> None:
    row = {f: 0 for f in empty_day() if not isinstance(empty_day()[f], dict)}
    row.update(visits=4, sharps_returned_kg=Decimal("0.5"), visit_minutes_median=Decimal("12.5"))
    day = day_from_rows(row, [("route", "inject", 3), ("route", "smoke", 1), ("nope", "x", 9)])
    assert day["visits"] == 4 and day["sharps_returned_kg"] == Decimal("0.5")
    assert day["visit_minutes_median"] == Decimal("12.5")
    assert day["visits_by_route"] == {"inject": 3, "smoke": 1, "snort": 0, "oral": 0}
    assert all("x" not in v for v in day.values() if isinstance(v, dict))  # unknown dimension


def test_no_row_is_an_empty_day_with_its_breakdowns() -> None:
    day = day_from_rows(None, [("refusal_reason", "capacity", 2)])
    assert day["visits"] == 0 and day["visit_minutes_mean"] is None
    assert day["refusals_by_reason"]["capacity"] == 2


def test_city_sums_keep_breakdown_keys_outside_todays_vocabulary() -> None:
    """Stored days may hold a key a later vocabulary dropped; the city must still add it up."""
    a = day_from_rows(None, [("route", "retired", 2)])
    b = day_from_rows(None, [("route", "retired", 3)])
    c = empty_day()
    assert sum_days([a, b, c])["visits_by_route"]["retired"] == 5
    assert sum_days([c, a])["visits_by_route"]["retired"] == 2


def test_the_mean_of_one_visit_is_its_length() -> None:
    assert mean_minutes(Decimal(600), 1) == Decimal("10.00")


def test_means_round_half_up_not_to_even() -> None:
    assert mean_minutes(Decimal("7.5"), 1) == Decimal("0.13")  # 0.125 min
    assert mean_minutes(Decimal("8.1"), 1) == Decimal("0.14")  # 0.135 min
