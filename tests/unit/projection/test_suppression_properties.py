"""Property: whatever the day's figures, no hidden cell of the public view can be narrowed by a
reader to a range narrower than the threshold through the published relations, and every shown
cell is the true figure.

The relations (tests/unit/projection/oracle.py ``relations``) are written from what the figures
mean (a breakdown adds up to its total, a named outcome equals its count, the city is the sum of
its districts), independently of the relation list in services.projection.suppression. The
reader's bounds are found by interval propagation over them (a hidden cell is at least 0, or 1
if it is not zero, as the production audit assumes); propagation never narrows more than the
production LP audit, so a narrow range here is a real leak. Days are drawn so that the relations
hold (each table is built from individual visits and incidents), with small counts so that
suppression has work to do. Deterministic (derandomized, no example database)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from services.projection.figures import empty_day, sum_days, to_json
from services.projection.suppression import (
    CITY,
    period_relations,
    plan,
    public_table,
    table_cells,
)
from shared.events.vocabulary import (
    IncidentKind,
    OnSiteService,
    Outcome,
    ReferralKind,
    RefusalReason,
    Route,
)
from tests.unit.projection.oracle import Cell, public_violations, reader_bounds, relations

THRESHOLD = 5
DISTRICTS = ("vesterbro", "nordvest", "sydhavn", "amager")
DAY = "day:2030-03-04"

small = st.integers(min_value=0, max_value=9)
#: Counts per cell: zeros, small ones (hidden) and a few large enough to be shown, so that
#: complements are needed and relations can be left with one unknown if a group is missing.
cell_count = st.sampled_from([0, 0, 0, 1, 2, 3, 5, 6, 8, 12])


@st.composite
def district_day(draw: st.DrawFn) -> dict[str, Any]:
    day = empty_day()
    for total, name, vocab in (
        ("visits", "visits_by_route", Route),
        ("refusals", "refusals_by_reason", RefusalReason),
        ("referrals", "referrals_by_kind", ReferralKind),
        ("services", "services_by_kind", OnSiteService),
    ):
        keys = draw(st.lists(st.sampled_from(list(vocab)), max_size=3, unique=True))
        for k in keys:
            day[name][k.value] = draw(cell_count)
        day[total] = sum(day[name].values())
    visits = day["visits"]
    day["unique_clients"] = draw(st.integers(0, visits))
    day["new_clients"] = draw(st.integers(0, day["unique_clients"]))
    day["assisted_injections"] = draw(st.integers(0, visits))
    day["visits_completed"] = draw(st.integers(0, visits))
    if day["visits_completed"]:
        day["visit_minutes_median"] = Decimal(draw(st.integers(1, 90)))
        day["visit_minutes_mean"] = Decimal(draw(st.integers(1, 90)))
        day["visit_seconds_total"] = day["visit_minutes_mean"] * 60 * day["visits_completed"]
    pairs = st.tuples(st.sampled_from(list(IncidentKind)), st.sampled_from(list(Outcome)))
    incidents = {pair: draw(cell_count) for pair in draw(st.lists(pairs, max_size=4))}
    for (kind, outcome), n in incidents.items():
        day["incidents_by_kind"][kind.value] += n
        day["incidents_by_outcome"][outcome.value] += n
    day["incidents"] = sum(incidents.values())
    day["overdoses"] = sum(
        n
        for (k, _), n in incidents.items()
        if k in (IncidentKind.OPIOID_OVERDOSE, IncidentKind.STIMULANT_OVERAMPING)
    )
    day["deaths"] = sum(n for (_, o), n in incidents.items() if o is Outcome.DIED)
    day["hospital_transfers"] = sum(
        n for (_, o), n in incidents.items() if o is Outcome.TRANSFERRED_TO_HOSPITAL
    )
    day["life_threatening"] = draw(st.integers(0, day["incidents"]))
    day["ambulance_calls"] = draw(st.integers(0, day["incidents"]))
    day["naloxone_doses"] = draw(small)
    day["drug_checks"] = draw(small)
    day["drug_checks_unexpected"] = draw(st.integers(0, day["drug_checks"]))
    return day


@settings(
    derandomize=True,
    database=None,
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(days=st.lists(district_day(), min_size=1, max_size=len(DISTRICTS)))
def test_no_hidden_cell_can_be_narrowed_below_the_threshold_through_published_relations(
    days: list[dict[str, Any]],
) -> None:
    districts = dict(zip(DISTRICTS, days, strict=False))
    city = sum_days(districts.values(), median=Decimal("17.5"))
    tables = {**districts, CITY: city}
    values: dict[tuple[str, str, str], int] = {}
    for t, day in tables.items():
        values.update(table_cells(DAY, t, day, daily=True))
    decision = plan(DAY, values, set(), period_relations(DAY, list(districts), True), THRESHOLD)
    assert not decision.withheld  # a single day with nothing released before always has a plan
    public = {
        t: public_table(DAY, t, to_json(day), decision.hidden, THRESHOLD, daily=True)
        for t, day in tables.items()
    }
    truth = {t: to_json(day) for t, day in tables.items()}
    rels = list(relations(districts))
    for total, members in rels:  # the relations hold in the true figures
        assert _value(truth, total) == sum(_value(truth, m) for m in members), total
    assert public_violations(public, truth, THRESHOLD) == []
    narrow = {
        ".".join(c): (low, high)
        for c, (low, high) in reader_bounds(public, truth, rels).items()
        if high - low < THRESHOLD
    }
    assert narrow == {}


def _value(tables: dict[str, dict[str, Any]], cell: Cell) -> Any:
    value: Any = tables[cell[0]]
    for part in cell[1:]:
        value = value.get(part, 0) if isinstance(value, dict) else None
    return value
