"""Property: whatever the day's figures, no hidden cell of the public view can be recovered from
any relation a reader knows, and every shown cell is the true figure.

The relations are written here from what the figures mean (a breakdown adds up to its total, a
named outcome equals its count, the city is the sum of its districts), independently of the
group list in services.projection.suppression. Days are drawn so that the relations hold (each
table is built from individual visits and incidents), with small counts so that suppression has
work to do. Deterministic (derandomized, no example database)."""

from __future__ import annotations

from collections.abc import Iterator
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

THRESHOLD = 5
DISTRICTS = ("vesterbro", "nordvest", "sydhavn", "amager")

Relation = tuple[tuple[str, ...], tuple[tuple[str, ...], ...]]  # (total, members) as API paths


def relations_of(table: str) -> Iterator[Relation]:
    """total = sum(members), as a reader of one public table knows them."""

    def members(breakdown: str, keys: list[str]) -> tuple[tuple[str, ...], ...]:
        return tuple((table, breakdown, k) for k in keys)

    yield (table, "visits"), members("visits_by_route", [r.value for r in Route])
    yield (table, "refusals"), members("refusals_by_reason", [r.value for r in RefusalReason])
    yield (table, "referrals"), members("referrals_by_kind", [r.value for r in ReferralKind])
    yield (table, "services"), members("services_by_kind", [s.value for s in OnSiteService])
    yield (table, "incidents"), members("incidents_by_kind", [k.value for k in IncidentKind])
    yield (table, "incidents"), members("incidents_by_outcome", [o.value for o in Outcome])
    yield (
        (table, "overdoses"),
        members("incidents_by_kind", ["opioid_overdose", "stimulant_overamping"]),
    )
    yield (table, "deaths"), members("incidents_by_outcome", ["died"])
    yield (
        (table, "hospital_transfers"),
        members("incidents_by_outcome", ["transferred_to_hospital"]),
    )


PERSON_FIELDS = (
    "visits",
    "unique_clients",
    "new_clients",
    "assisted_injections",
    "visits_completed",
    "refusals",
    "referrals",
    "services",
    "incidents",
    "overdoses",
    "life_threatening",
    "naloxone_doses",
    "ambulance_calls",
    "hospital_transfers",
    "deaths",
    "drug_checks",
    "drug_checks_unexpected",
)
PERSON_BREAKDOWNS = {
    "visits_by_route": Route,
    "refusals_by_reason": RefusalReason,
    "referrals_by_kind": ReferralKind,
    "services_by_kind": OnSiteService,
    "incidents_by_kind": IncidentKind,
    "incidents_by_outcome": Outcome,
}


def city_relations(tables: list[str]) -> Iterator[Relation]:
    """Every cell of the city is the sum of the same cell of every district."""
    for field in PERSON_FIELDS:
        yield (CITY, field), tuple((d, field) for d in tables)
    for name, vocab in PERSON_BREAKDOWNS.items():
        for k in vocab:
            yield (CITY, name, k.value), tuple((d, name, k.value) for d in tables)


small = st.integers(min_value=0, max_value=9)


@st.composite
def district_day(draw: st.DrawFn) -> dict[str, Any]:
    day = empty_day()
    routes = draw(st.lists(st.sampled_from(list(Route)), max_size=14))
    for r in routes:
        day["visits_by_route"][r.value] += 1
    day["visits"] = len(routes)
    day["unique_clients"] = draw(st.integers(0, len(routes)))
    day["new_clients"] = draw(st.integers(0, day["unique_clients"]))
    day["assisted_injections"] = draw(st.integers(0, len(routes)))
    day["visits_completed"] = draw(st.integers(0, len(routes)))
    for total, name, vocab in (
        ("refusals", "refusals_by_reason", RefusalReason),
        ("referrals", "referrals_by_kind", ReferralKind),
        ("services", "services_by_kind", OnSiteService),
    ):
        picks = draw(st.lists(st.sampled_from(list(vocab)), max_size=8))
        for k in picks:
            day[name][k.value] += 1
        day[total] = len(picks)
    incidents = draw(
        st.lists(st.tuples(st.sampled_from(list(IncidentKind)), st.sampled_from(list(Outcome))))
    )
    for kind, outcome in incidents:
        day["incidents_by_kind"][kind.value] += 1
        day["incidents_by_outcome"][outcome.value] += 1
    day["incidents"] = len(incidents)
    day["overdoses"] = sum(
        k in (IncidentKind.OPIOID_OVERDOSE, IncidentKind.STIMULANT_OVERAMPING) for k, _ in incidents
    )
    day["deaths"] = sum(o is Outcome.DIED for _, o in incidents)
    day["hospital_transfers"] = sum(o is Outcome.TRANSFERRED_TO_HOSPITAL for _, o in incidents)
    day["life_threatening"] = draw(st.integers(0, len(incidents)))
    day["ambulance_calls"] = draw(st.integers(0, len(incidents)))
    day["naloxone_doses"] = draw(small)
    day["drug_checks"] = draw(small)
    day["drug_checks_unexpected"] = draw(st.integers(0, day["drug_checks"]))
    return day


def cell(public: dict[str, dict[str, Any]], path: tuple[str, ...]) -> Any:
    table, *rest = path
    value: Any = public[table]
    for part in rest:
        value = value[part]
    return value


@settings(
    derandomize=True,
    database=None,
    max_examples=50,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(days=st.lists(district_day(), min_size=1, max_size=len(DISTRICTS)))
def test_no_hidden_cell_is_the_only_unknown_of_a_published_relation(
    days: list[dict[str, Any]],
) -> None:
    districts = dict(zip(DISTRICTS, days, strict=False))
    city = sum_days(districts.values())
    hidden = suppress_day(districts, city, THRESHOLD)
    public = {d: public_day(d, to_json(day), hidden, THRESHOLD) for d, day in districts.items()}
    public[CITY] = public_day(CITY, to_json(city), hidden, THRESHOLD)
    truth = {d: to_json(day) for d, day in districts.items()} | {CITY: to_json(city)}

    relations = [r for t in [*districts, CITY] for r in relations_of(t)]
    relations += list(city_relations(list(districts)))
    for total, members in relations:
        # the relation really holds in the true figures (the test's own reading of them)
        assert cell(truth, total) == sum(cell(truth, m) for m in members), total
        unknown = [c for c in (total, *members) if cell(public, c) is None]
        assert len(unknown) != 1, f"{unknown[0]} recoverable from {total} = sum{members}"

    for table, pub in public.items():
        for field in PERSON_FIELDS:
            v = pub[field]
            true = truth[table][field]
            assert v is None or v == true, (table, field)  # shown cells are the truth
            assert v is not None or field in pub["suppressed"]
            if 0 < true < THRESHOLD:
                assert v is None, (table, field, true)  # every small count is hidden
        for name in PERSON_BREAKDOWNS:
            for k, v in pub[name].items():
                true = truth[table][name][k]
                assert v is None or v == true, (table, name, k)
                if 0 < true < THRESHOLD:
                    assert v is None, (table, name, k, true)
        completed = truth[table]["visits_completed"]
        if pub["visits_completed"] is None or 0 < completed < THRESHOLD:
            assert pub["visit_minutes_mean"] is None and pub["visit_minutes_median"] is None
