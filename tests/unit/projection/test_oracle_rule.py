"""The oracle's own checks can fail: its public rule (:func:`public_violations`) flags a shown
small count, a wrong figure, a hidden quantity of things, a wrong ``suppressed`` list and a
hidden cell a reader narrows through the published relations; its room view counts what a room
reported. Tables are written by hand here, not by the suppression code."""

from __future__ import annotations

import copy
from datetime import UTC, datetime, timedelta
from typing import Any

from services.projection.figures import empty_day, to_json
from shared.events.vocabulary import IncidentKind, Outcome, Route, SupplyItem
from tests.unit.projection.factory import (
    CITY,
    dispensed,
    incident,
    refused,
    visit_ended,
    visit_started,
)
from tests.unit.projection.oracle import CITY_TABLE, Oracle, public_violations

#: One district's true day: 12 visits (all injecting), 2 refusals for capacity, 10 incidents
#: (7 recovered, 3 died), 40 syringes handed out.
TRUTH: dict[str, Any] = {
    "visits": 12,
    "visits_by_route": {"inject": 12},
    "refusals": 2,
    "refusals_by_reason": {"capacity": 2},
    "incidents": 10,
    "incidents_by_kind": {"other_medical": 10},
    "incidents_by_outcome": {"recovered_on_site": 7, "died": 3},
    "deaths": 3,
    "supplies_dispensed": 40,
    "supplies_by_item": {"syringes": 40},
}
#: A publication that follows the rule: the small counts hidden, and with them enough of the
#: incidents' cells that the deaths lie anywhere in a range at least 5 wide.
HIDDEN = [
    "refusals",
    "refusals_by_reason.capacity",
    "deaths",
    "incidents_by_outcome.died",
    "incidents_by_outcome.recovered_on_site",
    "incidents",
    "incidents_by_kind.other_medical",
]


def _table(truth: dict[str, Any], hidden: list[str]) -> dict[str, Any]:
    table = to_json(empty_day())
    for f, v in truth.items():
        if isinstance(v, dict):
            table[f] = {**table[f], **v}
        else:
            table[f] = v
    for cell in hidden:
        name, _, key = cell.partition(".")
        if key:
            table[name] = {**table[name], key: None}
        else:
            table[name] = None
    table["suppressed"] = sorted(hidden)
    return table


def _public(hidden: list[str] = HIDDEN) -> dict[str, dict[str, Any]]:
    # one district; the city is its sum, so the same cells are hidden there
    return {"vesterbro": _table(TRUTH, hidden), CITY_TABLE: _table(TRUTH, hidden)}


TRUE = {"vesterbro": TRUTH, CITY_TABLE: TRUTH}


def test_a_publication_that_follows_the_rule_has_no_violation() -> None:
    assert public_violations(_public(), TRUE, threshold=5) == []


def test_a_shown_small_count_or_a_wrong_figure_is_a_violation() -> None:
    public = _public([c for c in HIDDEN if not c.startswith("refusals")])
    found = public_violations(public, TRUE, threshold=5)
    assert "vesterbro.refusals = 2 is below 5 but shown" in found
    public = _public()
    public["vesterbro"]["visits"] = 13
    assert "vesterbro.visits shows 13, truly 12" in public_violations(public, TRUE, 5)


def test_a_hidden_quantity_of_things_or_a_wrong_suppressed_list_is_a_violation() -> None:
    public = _public()
    public["vesterbro"]["supplies_by_item"]["syringes"] = None
    found = public_violations(public, TRUE, threshold=5)
    assert "vesterbro.supplies_by_item.syringes hidden, but it is no count of people" in found
    public = _public()
    public[CITY_TABLE]["suppressed"] = ["refusals"]
    assert any(v.startswith("*: suppressed lists") for v in public_violations(public, TRUE, 5))


def test_a_hidden_cell_a_reader_narrows_is_a_violation() -> None:
    # the example: incidents 10 and recovered 7 shown reveal 3 deaths
    shown = {
        "incidents",
        "incidents_by_outcome.recovered_on_site",
        "incidents_by_kind.other_medical",
    }
    public = _public([c for c in HIDDEN if c not in shown])
    found = public_violations(public, TRUE, threshold=5)
    assert "vesterbro.deaths narrowed to [3, 3] by a reader" in found
    assert "*.incidents_by_outcome.died narrowed to [3, 3] by a reader" in found


def test_the_room_view_counts_what_the_room_reported() -> None:
    t = datetime(2030, 3, 4, 11, 0, tzinfo=UTC)
    events = [
        visit_started("v1", t, facility="halmtorv", client=1, route=Route.SMOKE, first=True),
        visit_ended("v1", t + timedelta(minutes=20), facility="halmtorv"),
        visit_started("v2", t, facility="halmtorv", client=1),
        visit_started("v3", t, facility="maendenes-hjem", client=1),
        refused(t, facility="halmtorv"),
        dispensed(t, {SupplyItem.SYRINGES: 30, SupplyItem.FOIL: 2}, facility="halmtorv"),
        incident(t, IncidentKind.OPIOID_OVERDOSE, outcome=Outcome.DIED, facility="halmtorv"),
    ]
    events += copy.deepcopy(events[:1])  # a redelivery counts once
    oracle = Oracle(CITY).feed(events)
    day = oracle.day(t)
    room = oracle.room_days("halmtorv")[day]
    assert room["visits"] == 2 and room["people"] == 1 and room["new_people"] == 1
    assert room["supplies_dispensed"] == 32 and room["supplies_dispensed.syringes"] == 30
    assert room["incidents"] == room["incidents.opioid_overdose"] == room["deaths"] == 1
    assert room["incident_outcomes.died"] == room["overdoses"] == 1
    assert room["refusals"] == 1 and "life_threatening_survived" not in room
