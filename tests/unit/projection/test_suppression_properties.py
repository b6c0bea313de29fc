"""Property: whatever the day's figures, no hidden cell of the public view can be recovered from
any relation a reader knows, and every shown cell is the true figure.

The relations (tests/unit/projection/oracle.py ``relations``) are written from what the figures
mean (a breakdown adds up to its total, a named outcome equals its count, the city is the sum of
its districts), independently of the group list in services.projection.suppression. Days are
drawn so that the relations hold (each table is built from individual visits and incidents),
with small counts so that suppression has work to do. Deterministic (derandomized, no example
database)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from services.projection.figures import empty_day, sum_days, to_json
from services.projection.suppression import CITY, public_day, suppress_day
from shared.events.vocabulary import (
    IncidentKind,
    OnSiteService,
    Outcome,
    ReferralKind,
    RefusalReason,
    Route,
)
from tests.unit.projection.oracle import public_violations, relations

THRESHOLD = 5
DISTRICTS = ("vesterbro", "nordvest", "sydhavn", "amager")

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
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(days=st.lists(district_day(), min_size=1, max_size=len(DISTRICTS)))
def test_no_hidden_cell_is_the_only_unknown_of_a_published_relation(
    days: list[dict[str, Any]],
) -> None:
    districts = dict(zip(DISTRICTS, days, strict=False))
    city = sum_days(districts.values(), median=Decimal("17.5"))
    hidden = suppress_day(districts, city, THRESHOLD)
    public = {d: public_day(d, to_json(day), hidden, THRESHOLD) for d, day in districts.items()}
    public[CITY] = public_day(CITY, to_json(city), hidden, THRESHOLD)
    truth = {d: to_json(day) for d, day in districts.items()} | {CITY: to_json(city)}
    for total, members in relations(districts):  # the relations hold in the true figures
        assert _value(truth, total) == sum(_value(truth, m) for m in members), total
    assert public_violations(public, truth, THRESHOLD) == []


def _value(tables: dict[str, dict[str, Any]], cell: tuple[str, ...]) -> Any:
    value: Any = tables[cell[0]]
    for part in cell[1:]:
        value = value[part]
    return value
