"""Small-cell suppression: primary, complementary, and no recovery by subtraction."""

from __future__ import annotations

import itertools
import random
from collections.abc import Hashable
from typing import Any

import pytest

from services.projection.figures import empty_day, sum_days, to_json
from services.projection.suppression import (
    CITY,
    Group,
    public_day,
    suppress,
    suppress_day,
)


def test_primary_suppression_hides_one_to_threshold_minus_one() -> None:
    values: dict[Hashable, int] = {"a": 0, "b": 1, "c": 4, "d": 5, "e": 100}
    assert suppress(values, [], threshold=5) == {"b", "c"}
    assert suppress(values, [], threshold=2) == {"b"}
    assert suppress(values, [], threshold=1) == set()


def test_a_lone_hidden_member_takes_the_next_smallest_with_it() -> None:
    values: dict[Hashable, int] = {"T": 30, "a": 3, "b": 9, "c": 7, "z": 0}
    hidden = suppress(values, [Group("T", ("a", "b", "c", "z"))], threshold=5)
    assert hidden == {"a", "c"}  # 7 is the smallest shown non-zero member


def test_a_hidden_total_and_member_cover_each_other() -> None:
    values: dict[Hashable, int] = {"T": 3, "a": 3, "z": 0}
    assert suppress(values, [Group("T", ("a", "z"))], threshold=5) == {"T", "a"}


def test_a_zero_is_the_complement_only_when_no_non_zero_is_shown() -> None:
    values: dict[Hashable, int] = {"T": 9, "a": 2, "z": 0}  # an inequality-like relation
    assert suppress(values, [Group("T", ("a", "z"))], threshold=5) == {"a", "z"}


def test_two_hidden_members_need_nothing_more() -> None:
    values: dict[Hashable, int] = {"T": 20, "a": 2, "b": 3, "c": 15}
    assert suppress(values, [Group("T", ("a", "b", "c"))], threshold=5) == {"a", "b"}


def test_a_hidden_total_with_shown_members_hides_a_member() -> None:
    values: dict[Hashable, int] = {"T": 4, "a": 0, "b": 0}
    assert suppress(values, [Group("T", ("a", "b"))], threshold=5) == {"T", "a"}


def test_complements_propagate_through_linked_groups() -> None:
    # a is hidden; its complement b also belongs to a second group, which then needs one more
    values: dict[Hashable, int] = {"T1": 20, "a": 2, "b": 18, "T2": 30, "c": 12}
    groups = [Group("T1", ("a", "b")), Group("T2", ("b", "c"))]
    assert suppress(values, groups, threshold=5) == {"a", "b", "c"}


def _recoverable(
    values: dict[Hashable, int], groups: list[Group], hidden: set[Hashable]
) -> set[Hashable]:
    """Hidden cells a reader can compute from one relation with a single unknown."""
    found = set()
    for g in groups:
        unknown = [c for c in (g.total, *g.members) if c in hidden]
        if len(unknown) == 1:
            found.add(unknown[0])
    return found


@pytest.mark.parametrize("seed", range(30))
def test_no_relation_is_left_with_a_single_unknown(seed: int) -> None:
    rng = random.Random(seed)
    rows, cols = rng.randint(1, 4), rng.randint(1, 5)
    values: dict[Hashable, int] = {
        (r, c): rng.choice([0, 1, 2, 3, 6, 9, 20])
        for r, c in itertools.product(range(rows), range(cols))
    }
    groups = []
    for r in range(rows):
        values[(r, "T")] = sum(values[(r, c)] for c in range(cols))
        groups.append(Group((r, "T"), tuple((r, c) for c in range(cols))))
    for c in [*range(cols), "T"]:
        values[("T", c)] = sum(values[(r, c)] for r in range(rows))
        groups.append(Group(("T", c), tuple((r, c) for r in range(rows))))
    hidden = suppress(values, groups, threshold=5)
    assert {c for c, v in values.items() if 0 < v < 5} <= hidden
    assert _recoverable(values, groups, hidden) == set()


def _day(**counts: Any) -> dict[str, Any]:
    day = empty_day()
    for k, v in counts.items():
        if isinstance(v, dict):
            day[k].update(v)
        else:
            day[k] = v
    return day


def test_public_district_day_hides_small_counts_and_complements() -> None:
    districts = {
        "vesterbro": _day(
            visits=40,
            visits_by_route={"inject": 30, "smoke": 8, "snort": 2},
            refusals=7,
            refusals_by_reason={"capacity": 7},
        ),
        "amager": _day(visits=12, visits_by_route={"inject": 12}),
    }
    city = sum_days(districts.values())
    hidden = suppress_day(districts, city, threshold=5)
    out = public_day("vesterbro", to_json(districts["vesterbro"]), hidden, 5)
    assert out["visits_by_route"]["snort"] is None  # primary
    assert out["visits_by_route"]["smoke"] is None  # complement: 40 - 30 would reveal snort
    assert out["visits_by_route"]["inject"] == 30 and out["visits"] == 40
    assert out["refusals"] == 7 and out["refusals_by_reason"]["capacity"] == 7
    assert "visits_by_route.snort" in out["suppressed"]
    city_out = public_day(CITY, to_json(city), hidden, 5)
    # the city's cell equals vesterbro's hidden cell plus amager's zero: hidden too
    assert city_out["visits_by_route"]["snort"] is None


def test_a_small_district_is_not_revealed_by_the_city_total() -> None:
    districts = {
        "vesterbro": _day(deaths=0),
        "amager": _day(refusals=3),
        "nordvest": _day(refusals=9),
        "sydhavn": _day(refusals=20),
    }
    city = sum_days(districts.values())
    hidden = suppress_day(districts, city, threshold=5)
    assert ("amager", "refusals") in hidden
    shown_refusals = [d for d in districts if (d, "refusals") not in hidden]
    # city total minus the shown districts must leave at least two unknowns
    assert (CITY, "refusals") in hidden or len(districts) - len(shown_refusals) >= 2


def test_minutes_are_hidden_for_few_completed_visits() -> None:
    day = _day(
        visits=10,
        visits_completed=3,
        visit_minutes_median=20,
        visit_minutes_mean=25,
        visits_by_route={"inject": 10},
    )
    hidden = suppress_day({"vesterbro": day}, sum_days([day]), threshold=5)
    out = public_day("vesterbro", to_json(day), hidden, 5)
    assert out["visit_minutes_median"] is None and out["visit_minutes_mean"] is None


def test_quantities_of_things_are_not_suppressed() -> None:
    day = _day(
        supplies_dispensed=3,
        supplies_by_item={"foil": 3},
        street_needles_count=2,
        sharps_returned_count=1,
    )
    hidden = suppress_day({"vesterbro": day}, sum_days([day]), threshold=5)
    out = public_day("vesterbro", to_json(day), hidden, 5)
    assert out["supplies_by_item"]["foil"] == 3 and out["street_needles_count"] == 2
    assert out["suppressed"] == []
