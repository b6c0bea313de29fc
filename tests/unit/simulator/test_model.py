"""The pure facility model: determinism, realistic rates, opening hours, booth capacity."""

from __future__ import annotations

import itertools
from collections import Counter, defaultdict
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest

from services.simulator.model import (
    ENDPOINTS,
    IntendedReport,
    Service,
    is_payday_surge,
    last_banking_day,
    simulate,
)
from services.simulator.params import SimParams
from shared.city import City, load_city
from shared.events.catalogue import CATALOGUE
from shared.events.vocabulary import OVERDOSE_KINDS, IncidentKind
from shared.settings import CitySettings

CITY = load_city(CitySettings().file)
ZONE = CITY.zone
#: A Monday; the ordinary week before a payday surge (Mon 30 Nov is November's last banking day).
WEEK_START = datetime(2026, 11, 23, tzinfo=ZONE)
WEEK_END = WEEK_START + timedelta(days=7)


@dataclass
class Visit:
    lane: str
    start: datetime
    end: datetime | None
    booth: int
    refs: list[IntendedReport]


def visits_of(reports: list[IntendedReport]) -> dict[str, Visit]:
    visits: dict[str, Visit] = {}
    for r in reports:
        if r.visit_ref is not None:
            visits[r.visit_ref] = Visit(r.lane, r.at, None, int(r.body["booth"]), [])
        if r.needs_visit is not None:
            v = visits[r.needs_visit]  # KeyError: a dependent before its visit's start
            assert v.end is None, f"{r.event} after the end of {r.needs_visit}"
            v.refs.append(r)
            if r.event == "visit.ended":
                v.end = r.at
    return visits


def run(
    params: SimParams | None = None,
    *,
    seed: int = 42,
    start: datetime = WEEK_START,
    end: datetime | None = WEEK_END,
    facilities: list[str] | None = None,
    city: City = CITY,
) -> list[IntendedReport]:
    return list(
        simulate(
            city, params or SimParams(), seed=seed, start=start, end=end, facilities=facilities
        )
    )


@pytest.fixture(scope="module")
def week() -> list[IntendedReport]:
    return run()


def per_day(reports: list[IntendedReport], event: str) -> dict[tuple[str, date], int]:
    out: Counter[tuple[str, date]] = Counter()
    for r in reports:
        if r.event == event:
            out[(r.lane, r.at.astimezone(ZONE).date())] += 1
    return out


# --- determinism ------------------------------------------------------------------------------


def test_same_seed_same_requests_and_another_seed_others() -> None:
    end = WEEK_START + timedelta(days=1)
    a, b = run(end=end), run(end=end)
    assert a == b and len(a) > 1000
    assert run(end=end, seed=43) != a


def test_a_facility_stream_does_not_depend_on_the_others(week: list[IntendedReport]) -> None:
    alone = run(facilities=["halmtorv"])
    assert [r for r in alone if r.lane == "halmtorv"] == [r for r in week if r.lane == "halmtorv"]
    # Its district's street sweeps come along; no other district's.
    assert {r.lane for r in alone} == {"halmtorv", "district:vesterbro"}


def test_the_stream_is_lazy_and_unbounded_without_an_end() -> None:
    stream = simulate(CITY, SimParams(), seed=1, start=WEEK_START)
    first = list(itertools.islice(stream, 20_000))
    assert first[-1].at - first[0].at > timedelta(days=4)


# --- shape of the stream ----------------------------------------------------------------------


def test_stream_is_time_ordered_within_bounds_and_numbered_per_lane(
    week: list[IntendedReport],
) -> None:
    assert all(a.at <= b.at for a, b in itertools.pairwise(week))
    assert all(WEEK_START <= r.at < WEEK_END and r.at.microsecond == 0 for r in week)
    seqs: dict[str, list[int]] = defaultdict(list)
    for r in week:
        seqs[r.lane].append(r.seq)
    assert all(s == list(range(len(s))) for s in seqs.values())


def test_every_event_maps_to_a_real_route_and_the_catalogue() -> None:
    from services.incident.routes import ROUTES as INCIDENT
    from services.intake.routes import ROUTES as INTAKE
    from services.supply.routes import ROUTES as SUPPLY

    paths = {
        Service.INTAKE: {"/v1" + r.path for r in INTAKE},
        Service.SUPPLY: {"/v1" + r.path for r in SUPPLY},
        Service.INCIDENT: {"/v1" + r.path for r in INCIDENT},
    }
    for event, (service, path) in ENDPOINTS.items():
        assert path in paths[service], (event, path)
        assert "dk.dcr." + event in CATALOGUE, event


def test_bodies_validate_against_the_services_request_models(week: list[IntendedReport]) -> None:
    from services.incident.routes import ROUTES as INCIDENT
    from services.intake.routes import ROUTES as INTAKE
    from services.supply.routes import ROUTES as SUPPLY

    models = {"/v1" + r.path: r.request_model for r in (*INTAKE, *SUPPLY, *INCIDENT)}
    seen: set[str] = set()
    for r in week:
        body: dict[str, Any] = dict(r.body)
        if r.needs_visit is not None:
            body["visit_id"] = "0123456789abcdef"
        models[r.path].model_validate(body)
        seen.add(r.event)
    assert seen == set(ENDPOINTS), set(ENDPOINTS) - seen  # a week exercises every endpoint


def test_visits_and_their_dependents_refer_to_started_visits(week: list[IntendedReport]) -> None:
    visits = visits_of(week)
    ended = [v for v in visits.values() if v.end is not None]
    assert len(ended) >= len(visits) - 50  # only the visits still open at the end lack an end
    for v in ended:
        assert v.refs[-1].event == "visit.ended"
        assert all(v.start <= d.at <= v.end for d in v.refs)  # type: ignore[operator]
        assert v.start < v.end  # type: ignore[operator]


# --- realism ----------------------------------------------------------------------------------


def test_visits_per_day_are_in_the_realistic_range(week: list[IntendedReport]) -> None:
    daily = per_day(week, "visit.started")
    for f in CITY.facilities:
        counts = [n for (lane, _), n in daily.items() if lane == f.id]
        assert len(counts) == 7, f.id
        assert 100 <= sum(counts) / 7 <= 400, (f.id, counts)
        assert all(80 <= n <= 440 for n in counts), (f.id, counts)


def test_payday_raises_the_volume() -> None:
    params = SimParams(day_noise_sigma=0.0, visits_per_day_max=1000)
    # open 24/7: every day alike
    reports = run(params, facilities=["maendenes-hjem"], end=WEEK_END + timedelta(days=1))
    daily = per_day(reports, "visit.started")
    payday = daily[("maendenes-hjem", date(2026, 11, 30))]
    ordinary = [daily[("maendenes-hjem", date(2026, 11, d))] for d in (24, 25, 26)]
    assert payday > 1.15 * sum(ordinary) / 3


def test_overdoses_per_1000_visits_follow_the_parameter(week: list[IntendedReport]) -> None:
    def rate(reports: list[IntendedReport]) -> float:
        visits = sum(r.event == "visit.started" for r in reports)
        ods = sum(
            r.event == "incident.reported" and IncidentKind(r.body["kind"]) in OVERDOSE_KINDS
            for r in reports
        )
        return 1000 * ods / visits

    assert 5 <= rate(week) <= 11  # default 8 per 1,000
    assert 16 <= rate(run(SimParams(overdoses_per_1000=20))) <= 24


def test_overdose_treatment_shares() -> None:
    reports = run(SimParams(overdoses_per_1000=27), end=WEEK_START + timedelta(days=14))
    ods = [
        r.body
        for r in reports
        if r.event == "incident.reported" and IncidentKind(r.body["kind"]) in OVERDOSE_KINDS
    ]
    assert len(ods) > 300
    naloxone = sum(b["interventions"]["naloxone_doses"] > 0 for b in ods) / len(ods)
    assert 0.15 <= naloxone <= 0.35  # about a quarter
    hospital = [b for b in ods if b["outcome"] == "transferred_to_hospital"]
    assert 0 < len(hospital) <= 0.06 * len(ods)
    assert all(b["interventions"]["ambulance_called"] for b in hospital)
    assert 0 < sum(b["life_threatening"] for b in ods) <= 0.1 * len(ods)


def test_referrals_are_about_2_5_per_100_visits(week: list[IntendedReport]) -> None:
    visits = sum(r.event == "visit.started" for r in week)
    referrals = sum(r.event == "referral.made" for r in week)
    assert 1.8 <= 100 * referrals / visits <= 3.2


def test_halmtorv_hands_out_at_least_200_needles_a_day(week: list[IntendedReport]) -> None:
    needles: Counter[date] = Counter()
    for r in week:
        if r.lane == "halmtorv" and r.event == "supplies.dispensed":
            needles[r.at.astimezone(ZONE).date()] += r.body["items"].get("needles", 0)
    assert len(needles) == 7 and min(needles.values()) >= 200, needles


def test_sharps_stock_and_street_sweeps(week: list[IntendedReport]) -> None:
    counted = [r for r in week if r.event == "stock.counted"]
    assert len(counted) == 7 * len(CITY.facilities)  # one inventory per facility and day
    assert all(min(r.body["items"].values()) >= 0 for r in counted)
    assert any(r.event == "stock.delivered" for r in week)
    returned = sum(r.body["count"] for r in week if r.event == "sharps.returned")
    dispensed = sum(
        r.body["items"].get("needles", 0) for r in week if r.event == "supplies.dispensed"
    )
    assert 0.4 * dispensed < returned <= dispensed
    sweeps = [r for r in week if r.event == "street_needles.collected"]
    assert {r.body["district"] for r in sweeps} == {d.id for d in CITY.districts}
    assert all(r.principal == "sanitation-city" and "facility_id" not in r.body for r in sweeps)


def test_drug_checks_occasionally_find_an_adulterant() -> None:
    reports = run(SimParams(drug_check_share=0.2, adulterant_share=0.1))
    checks = [r.body for r in reports if r.event == "drugcheck.result"]
    surprising = [b for b in checks if len(b["found"]) > 1]
    assert len(checks) > 500 and 0.05 * len(checks) < len(surprising) < 0.15 * len(checks)
    assert all(b["found"][0] == b["expected"] for b in checks)


# --- opening hours and booths -----------------------------------------------------------------


def assert_open(city: City, visits: dict[str, Visit]) -> None:
    for ref, v in visits.items():
        f = city.facility_by_id[v.lane]
        last = (v.end or v.start + timedelta(seconds=1)) - timedelta(seconds=1)
        t = v.start
        while t <= last:  # every minute of the visit, and its last second
            assert f.is_open(t.astimezone(city.zone)), (ref, t.astimezone(city.zone))
            t += timedelta(minutes=1)
        assert f.is_open(last.astimezone(city.zone)), ref


def test_no_visit_outside_opening_hours(week: list[IntendedReport]) -> None:
    assert_open(CITY, visits_of(week))
    refused_closed = [
        r for r in week if r.event == "visit.refused" and r.body["reason"] == "closed"
    ]
    assert refused_closed  # late arrivals and the queue at closing time are turned away


def test_no_visit_outside_opening_hours_across_dst_and_midnight() -> None:
    city = City.model_validate(
        {
            "districts": [{"id": "d", "name": "D"}],
            "facilities": [
                {
                    "id": "night",
                    "name": "N",
                    "district": "d",
                    "address": "x",
                    "booths": 4,
                    "status": "permanent",
                    "opening_hours": {
                        day: ["20:00", "03:00"] for day in ("mon", "wed", "fri", "sat", "sun")
                    },
                }
            ],
        }
    )
    start = datetime(2026, 10, 22, tzinfo=city.zone)  # DST ends on Sunday 25 October
    reports = run(city=city, start=start, end=start + timedelta(days=7))
    visits = visits_of(reports)
    assert len(visits) > 200
    assert_open(city, visits)
    assert any(v.start.astimezone(city.zone).hour < 3 for v in visits.values())


def max_concurrent(visits: dict[str, Visit], lane: str, until: datetime) -> int:
    edges = []
    for v in visits.values():
        if v.lane == lane:
            edges += [(v.start, 1), (v.end or until, -1)]
    level = peak = 0
    for _, step in sorted(edges):  # at equal times an end (-1) sorts before a start (+1)
        level += step
        peak = max(peak, level)
    return peak


def booths_concurrently_used_once(visits: dict[str, Visit], lane: str, until: datetime) -> bool:
    by_booth: dict[int, list[Visit]] = defaultdict(list)
    for v in visits.values():
        if v.lane == lane:
            by_booth[v.booth].append(v)
    for vs in by_booth.values():
        vs.sort(key=lambda v: v.start)
        if any((a.end or until) > b.start for a, b in itertools.pairwise(vs)):
            return False
    return True


def test_never_more_concurrent_visits_than_booths(week: list[IntendedReport]) -> None:
    visits = visits_of(week)
    for f in CITY.facilities:
        assert max_concurrent(visits, f.id, WEEK_END) <= f.booths, f.id
        assert booths_concurrently_used_once(visits, f.id, WEEK_END), f.id
        assert {v.booth for v in visits.values() if v.lane == f.id} <= set(range(1, f.booths + 1))


def test_overload_queues_then_refuses_for_capacity() -> None:
    params = SimParams(booths={"halmtorv": 3}, visits_per_day={"halmtorv": 400})
    reports = run(params, facilities=["halmtorv"])
    visits = visits_of(reports)
    assert max_concurrent(visits, "halmtorv", WEEK_END) == 3
    capacity = [r for r in reports if r.event == "visit.refused" and r.body["reason"] == "capacity"]
    assert len(capacity) > 100
    # and at the default load a large room rarely turns anyone away
    normal = [
        r
        for r in run(facilities=["halmtorv"])
        if r.event == "visit.refused" and r.body["reason"] == "capacity"
    ]
    assert len(normal) < len(capacity) / 5


# --- calendar ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("year", "month", "expected"),
    [(2026, 11, date(2026, 11, 30)), (2026, 5, date(2026, 5, 29)), (2026, 12, date(2026, 12, 31))],
)
def test_last_banking_day(year: int, month: int, expected: date) -> None:
    assert last_banking_day(year, month) == expected


def test_payday_surge_days() -> None:
    surge = [d for d in range(1, 31) if is_payday_surge(date(2026, 5, d), through_day=2)]
    assert surge == [1, 2, 29, 30]
    assert is_payday_surge(date(2026, 5, 31), 2)


def test_reports_are_utc_and_bodies_local() -> None:
    r = next(simulate(CITY, SimParams(), seed=1, start=WEEK_START.astimezone(UTC)))
    assert r.at.tzinfo is UTC
    assert r.body["occurred_at"].endswith("+01:00")
