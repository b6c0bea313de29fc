"""Suppression cases a reader could exploit by subtraction if one relation or one condition were
missing (found by mutation testing, docs/mutation-report.md), against the LP-audited rule
(services.projection.suppression ``plan``/``audit``/``public_table``)."""

from __future__ import annotations

from typing import Any

import pytest

from services.projection.figures import empty_day, sum_days, to_json
from services.projection.suppression import (
    CITY,
    audit,
    period_relations,
    plan,
    public_table,
    table_cells,
)

THRESHOLD = 5
DAY = "day:2030-03-04"


def _day(**counts: Any) -> dict[str, Any]:
    day = empty_day()
    for k, v in counts.items():
        if isinstance(v, dict):
            day[k].update(v)
        else:
            day[k] = v
    return day


def _public(districts: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Every table of one released day (no earlier releases), after checking that the plan's
    hidden cells pass the audit: none can be narrowed below the threshold."""
    tables = {**districts, CITY: sum_days(districts.values())}
    values: dict[Any, int] = {}
    for t, day in tables.items():
        values.update(table_cells(DAY, t, day, daily=True))
    relations = period_relations(DAY, list(districts), daily=True)
    decision = plan(DAY, values, set(), relations, THRESHOLD)
    assert not decision.withheld
    ranges = audit(values, set(decision.hidden), relations)
    assert {c: r for c, r in ranges.items() if r.width < THRESHOLD} == {}
    return {
        t: public_table(DAY, t, to_json(day), decision.hidden, THRESHOLD, daily=True)
        for t, day in tables.items()
    }


def test_deaths_do_not_reveal_a_hidden_outcome() -> None:
    """incidents 10 = died 7 + recovered 3: recovered is hidden, and so is died (its complement);
    deaths (= outcome died) must then be hidden too, or 10 - 7 gives recovered away."""
    day = _day(
        incidents=10,
        deaths=7,
        incidents_by_kind={"opioid_overdose": 10},
        overdoses=10,
        incidents_by_outcome={"died": 7, "recovered_on_site": 3},
    )
    pub = _public({"vesterbro": day})["vesterbro"]
    assert pub["incidents_by_outcome"]["recovered_on_site"] is None
    assert pub["incidents_by_outcome"]["died"] is None or pub["incidents"] is None
    if pub["incidents_by_outcome"]["died"] is None:
        assert pub["deaths"] is None


def test_hospital_transfers_do_not_reveal_a_hidden_outcome() -> None:
    day = _day(
        incidents=10,
        hospital_transfers=8,
        incidents_by_kind={"seizure": 10},
        incidents_by_outcome={"transferred_to_hospital": 8, "left": 2},
    )
    pub = _public({"vesterbro": day})["vesterbro"]
    assert pub["incidents_by_outcome"]["left"] is None
    transferred = pub["incidents_by_outcome"]["transferred_to_hospital"]
    assert transferred is None or pub["incidents"] is None
    if transferred is None:
        assert pub["hospital_transfers"] is None


def test_overdoses_do_not_reveal_a_hidden_kind() -> None:
    """overdoses = opioid + stimulant: a shown total with one hidden kind would give it away."""
    day = _day(
        incidents=20,
        overdoses=9,
        incidents_by_kind={"opioid_overdose": 7, "stimulant_overamping": 2, "seizure": 11},
        incidents_by_outcome={"recovered_on_site": 20},
    )
    pub = _public({"vesterbro": day})["vesterbro"]
    kinds = pub["incidents_by_kind"]
    assert kinds["stimulant_overamping"] is None
    assert pub["overdoses"] is None or kinds["opioid_overdose"] is None


def test_minutes_are_hidden_when_visits_completed_is_hidden_as_a_complement() -> None:
    """amager's 3 completed visits are hidden (primary); the city total would give them away
    from vesterbro's 10, so vesterbro's count or the city's is hidden as a complement. Minutes
    go with every hidden completed-visit count, although 10 visits are enough on their own."""
    vesterbro = _day(
        visits=10,
        visits_by_route={"inject": 10},
        visits_completed=10,
        visit_minutes_median=30,
        visit_minutes_mean=31,
    )
    amager = _day(
        visits=10,
        visits_by_route={"inject": 10},
        visits_completed=3,
        visit_minutes_median=20,
        visit_minutes_mean=21,
    )
    pub = _public({"vesterbro": vesterbro, "amager": amager})
    assert pub["amager"]["visits_completed"] is None
    assert pub["vesterbro"]["visits_completed"] is None or pub[CITY]["visits_completed"] is None
    for table in pub.values():
        if table["visits_completed"] is None:
            assert table["visit_minutes_mean"] is None
            assert table["visit_minutes_median"] is None
            assert "visit_minutes_mean" in table["suppressed"]


def test_shown_cells_are_the_true_values_and_suppressed_names_the_hidden_ones() -> None:
    day = _day(
        visits=12,
        visits_by_route={"inject": 9, "smoke": 3},
        refusals=6,
        refusals_by_reason={"capacity": 6},
        visits_completed=12,
        visit_minutes_median=25,
        visit_minutes_mean=26,
    )
    pub = _public({"vesterbro": day})["vesterbro"]
    assert pub["refusals"] == 6
    assert pub["refusals_by_reason"] == {
        "capacity": 6,
        "closed": 0,
        "intoxicated": 0,
        "behaviour": 0,
        "other": 0,
    }
    assert pub["visits_by_route"]["smoke"] is None
    hidden = sorted(
        f
        for f in ("visits", *(f"visits_by_route.{k}" for k in pub["visits_by_route"]))
        if (pub[f] if "." not in f else pub["visits_by_route"][f.split(".")[1]]) is None
    )
    assert len(hidden) >= 2  # smoke and at least one complement
    assert pub["visits_completed"] == 12
    assert pub["visit_minutes_mean"] == 26.0 and pub["visit_minutes_median"] == 25.0
    assert pub["suppressed"] == hidden


def _breakdown_day(total: str, breakdown: str, cells: dict[str, int]) -> dict[str, Any]:
    day = _day(**{total: sum(cells.values()), breakdown: cells})
    if breakdown.startswith("incidents_by"):  # an incident has a kind and an outcome
        other = "incidents_by_outcome" if breakdown == "incidents_by_kind" else "incidents_by_kind"
        day["incidents"] = sum(cells.values())
        day[other]["recovered_on_site" if other == "incidents_by_outcome" else "other"] = day[
            "incidents"
        ]
        day["deaths"] = day["incidents_by_outcome"]["died"]
        day["overdoses"] = sum(
            day["incidents_by_kind"][k] for k in ("opioid_overdose", "stimulant_overamping")
        )
    return day


@pytest.mark.parametrize(
    ("total", "breakdown", "small", "others"),
    [
        ("visits", "visits_by_route", "inject", ("smoke", "snort")),
        ("refusals", "refusals_by_reason", "capacity", ("closed", "intoxicated")),
        ("referrals", "referrals_by_kind", "housing", ("medical_care", "mental_health")),
        ("services", "services_by_kind", "wound_care", ("counselling", "drug_checking")),
        ("incidents", "incidents_by_kind", "seizure", ("violence", "other_medical")),
        ("incidents", "incidents_by_outcome", "left", ("died", "recovered_on_site")),
        ("overdoses", "incidents_by_kind", "opioid_overdose", ("stimulant_overamping", "seizure")),
    ],
)
def test_a_small_total_and_its_only_cell_are_hidden(
    total: str, breakdown: str, small: str, others: tuple[str, str]
) -> None:
    """vesterbro has 3 of one kind: the total and that cell are both primary (1..4), and every
    hidden cell passes the audit (checked in ``_public``)."""
    districts = {
        "vesterbro": _breakdown_day(total, breakdown, {small: 3}),
        "amager": _breakdown_day(total, breakdown, {others[0]: 7, others[1]: 5}),
        "nordvest": _breakdown_day(total, breakdown, {small: 20}),
    }
    pub = _public(districts)["vesterbro"]
    assert pub[total] is None and pub[breakdown][small] is None


@pytest.mark.parametrize(("completed", "shown"), [(1, False), (4, False), (5, True), (9, True)])
def test_minutes_are_shown_from_threshold_completed_visits(completed: int, shown: bool) -> None:
    day = _day(
        visits=12,
        visits_by_route={"inject": 12},
        visits_completed=completed,
        visit_minutes_median=20,
        visit_minutes_mean=21,
    )
    out = public_table(DAY, "vesterbro", to_json(day), set(), THRESHOLD, daily=True)
    assert (out["visit_minutes_mean"] is not None) is shown
    assert (out["visit_minutes_median"] is not None) is shown
