"""The shipped city file and the rules that guard it."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from pydantic import ValidationError

from shared.city import City, load_city
from shared.settings import CitySettings


def test_shipped_city_is_copenhagen() -> None:
    city = load_city(CitySettings().file)
    assert city.timezone == "Europe/Copenhagen"
    assert {d.id for d in city.districts} == {"vesterbro", "nordvest", "sydhavn", "amager"}
    halmtorv = city.facility_by_id["halmtorv"]
    assert (halmtorv.district, halmtorv.status) == ("vesterbro", "temporary")
    assert city.facility_by_id["maendenes-hjem"].status == "planned"
    assert city.district_of("amager") == "amager"


def test_opening_hours_including_past_midnight() -> None:
    city = _city_with_hours({"fri": ["20:00", "02:00"], "sat": ["10:00", "12:00"]})
    f = city.facility_by_id["room"]
    assert f.is_open(datetime(2026, 11, 27, 21, 0))  # Friday evening
    assert f.is_open(datetime(2026, 11, 28, 1, 59))  # Saturday, after midnight
    assert not f.is_open(datetime(2026, 11, 28, 2, 0))
    assert f.is_open(datetime(2026, 11, 28, 10, 0))
    assert not f.is_open(datetime(2026, 11, 28, 9, 59))  # one-digit hours compare padded
    assert f.is_open(datetime(2026, 11, 28, 11, 5))  # and one-digit minutes
    assert not f.is_open(datetime(2026, 11, 28, 12, 0))
    assert not f.is_open(datetime(2026, 11, 26, 21, 0))  # Thursday: closed


def test_a_day_that_ends_at_24_00_is_open_to_its_last_minute_and_not_past_midnight() -> None:
    city = _city_with_hours({"mon": ["00:00", "24:00"]})
    f = city.facility_by_id["room"]
    assert f.is_open(datetime(2026, 11, 30, 0, 0))  # Monday
    assert f.is_open(datetime(2026, 11, 30, 23, 59, 59))
    assert not f.is_open(datetime(2026, 12, 1, 0, 0))  # Tuesday
    assert not f.is_open(datetime(2026, 11, 29, 23, 59))  # Sunday


@pytest.mark.parametrize(
    "hours",
    [
        None,  # the shipped rooms
        {"mon": ["10", "12:30"], "tue": ["22:00", "02:00"], "wed": ["00:00", "24:00"]},
        {"thu": ["1000", "10:00:30"], "fri": ["23:59", "00:01"], "sun": ["20:00", "20:00"]},
    ],
    ids=["shipped", "odd_spellings", "edges"],
)
def test_the_minute_table_answers_as_the_rule_every_minute_of_the_week(
    hours: dict[str, list[str]] | None,
) -> None:
    """``is_open`` reads a table made once from the rule (evaluated once per stretch between
    configured times): every minute of the week (any second of it) gets the rule's answer,
    also for spellings ``time.fromisoformat`` accepts besides "HH:MM" (compared as text)."""
    if hours is None:
        facilities = load_city(CitySettings().file).facilities
        assert any(f.opening_hours for f in facilities)
    else:
        facilities = _city_with_hours(hours).facilities
    monday = datetime(2026, 11, 30)
    for f in facilities:
        for weekday in range(7):
            for m in range(1440):
                at = monday + timedelta(days=weekday, minutes=m, seconds=59)
                expected = f._is_open_at(weekday, f"{m // 60:02d}:{m % 60:02d}")
                assert f.is_open(at) is expected, (f.id, at)


def _city_with_hours(hours: dict[str, list[str]]) -> City:
    return City.model_validate(
        {
            "districts": [{"id": "d", "name": "D"}],
            "facilities": [
                {
                    "id": "room",
                    "name": "R",
                    "district": "d",
                    "address": "x",
                    "booths": 4,
                    "status": "permanent",
                    "opening_hours": hours,
                }
            ],
        }
    )


@pytest.mark.parametrize(
    "broken",
    [
        {"facilities": [{"district": "nowhere"}]},
        {"districts": [{"id": "vesterbro", "name": "A"}, {"id": "vesterbro", "name": "B"}]},
        {"timezone": "Mars/Olympus"},
    ],
)
def test_inconsistent_city_is_refused(broken: dict[str, object]) -> None:
    base: dict[str, object] = {
        "timezone": "Europe/Copenhagen",
        "districts": [{"id": "vesterbro", "name": "Vesterbro"}],
        "facilities": [],
    }
    if "facilities" in broken:
        broken = {
            "facilities": [
                {
                    "id": "f",
                    "name": "F",
                    "district": "nowhere",
                    "address": "x",
                    "booths": 1,
                    "status": "planned",
                }
            ]
        }
    with pytest.raises(ValidationError):
        City.model_validate(base | broken)


def test_opening_dates_are_loaded_and_a_planned_room_has_not_opened() -> None:
    city = load_city(CitySettings().file)
    halmtorv = city.facility_by_id["halmtorv"]
    assert halmtorv.opened is not None and halmtorv.planned_opening is None
    planned = [f for f in city.facilities if f.status == "planned"]
    assert planned and all(f.opened is None and f.planned_opening for f in planned)
    room = {
        "id": "r",
        "name": "R",
        "district": "d",
        "address": "x",
        "booths": 4,
        "status": "planned",
        "opened": "2026-01-05",
    }
    with pytest.raises(ValidationError, match="planned room has no 'opened'"):
        City.model_validate({"districts": [{"id": "d", "name": "D"}], "facilities": [room]})
    with pytest.raises(ValidationError):
        City.model_validate(
            {
                "districts": [{"id": "d", "name": "D"}],
                "facilities": [{**room, "status": "permanent", "opened": "2026-02-30"}],
            }
        )
