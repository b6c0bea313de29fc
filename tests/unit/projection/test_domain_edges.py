"""The projector's rules at their edges (issue 13's additions and the batch helpers): visits
outside opening hours are counted per visit, by local time, only for visit starts, also on the
decoded path the consumer uses; a sealed day starts at local midnight; only a different report
under one (source, id) is a conflict; a void retracts exactly what was applied; a late alert
stays late; a reference to an unknown district in a payload is dead-lettered with its reason."""

from __future__ import annotations

import uuid
from collections import Counter
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from services.projection import domain
from services.projection.domain import (
    Decoded,
    conflicting_repeats,
    decode_batch,
    project,
    project_decoded,
    retraction,
    sealed_events,
)
from shared.city import City
from shared.events import payloads as p
from shared.events.envelope import Envelope
from shared.events.fast_decode import event_of
from shared.events.vocabulary import AlertReason, IncidentKind, Outcome, Substance
from tests.unit.projection.factory import (
    CITY,
    incident,
    record,
    refused,
    street_needles,
    visit_started,
    wrap,
)

ZONE = ZoneInfo("Europe/Copenhagen")
#: A Wednesday in winter (UTC+1): halmtorv is open 07:00-23:00 local time.
WED = date(2030, 1, 9)


def local(hh: int, mm: int = 0, day: date = WED) -> datetime:
    return datetime(day.year, day.month, day.day, hh, mm, tzinfo=ZONE)


def _decoded(events: list[Envelope]) -> list[Decoded]:
    decoded, rejected = decode_batch([record(e, i) for i, e in enumerate(events)], CITY)
    assert rejected == []
    return decoded


def test_visits_outside_opening_hours_are_counted_each_by_local_time() -> None:
    events = [
        visit_started("a", local(3), client=1),  # closed
        visit_started("b", local(2), client=2),  # closed
        visit_started("c", local(7, 30), client=3),  # open (06:30 UTC: closed in UTC)
        refused(local(3)),  # not a visit: not counted
        street_needles(local(3), "vesterbro", count=3),  # no facility
    ]
    assert project(events, CITY).outside_opening_hours == Counter({"halmtorv": 2})
    decoded = _decoded(events)
    assert project_decoded(decoded, CITY).outside_opening_hours == Counter({"halmtorv": 2})


def test_a_sealed_day_begins_at_local_midnight() -> None:
    events = [
        refused(local(23, 59, WED - timedelta(days=1))),
        refused(local(0, 0)),
    ]
    decoded = _decoded(events)
    sealed = sealed_events(decoded, WED, CITY)
    assert [d.event for d in sealed] == [event_of(events[0])]


def test_only_a_different_report_under_one_id_is_a_conflict() -> None:
    a, b = refused(local(9)), refused(local(10))
    again = a.model_copy()
    assert isinstance(a.data, p.VisitRefused)
    other = wrap(p.VisitRefused(reason=a.data.reason), local(11), id=a.id)
    decoded = _decoded([a, b, again, other])
    conflicts = conflicting_repeats(decoded)
    assert [d.event for d in conflicts] == [event_of(other)]
    unique, conflicting, duplicates = domain.split_repeats(decoded)  # the projector's one pass
    assert [d.event for d in unique] == [event_of(a), event_of(b)]
    assert conflicting == conflicts
    assert [d.event for d in duplicates] == [event_of(again)]


def test_a_retraction_negates_exactly_what_was_applied() -> None:
    events = [
        refused(local(9)),
        incident(local(10), IncidentKind.OPIOID_OVERDOSE, outcome=Outcome.DIED),
        incident(local(11), IncidentKind.SEIZURE, facility="maendenes-hjem"),
    ]
    applied = project(events, CITY)
    undo = retraction(events, CITY).changes
    assert undo.districts == applied.districts == {"vesterbro"}
    assert applied.facility_daily
    assert set(undo.facility_daily) == set(applied.facility_daily)
    for key, counts in applied.facility_daily.items():
        assert {c: n + undo.facility_daily[key][c] for c, n in counts.items()} == dict.fromkeys(
            counts, 0
        )


def test_a_late_alert_stays_late() -> None:
    raised = p.DrugAlertRaised(
        alert_id=uuid.uuid4().hex,
        district="vesterbro",
        reason=AlertReason.OVERDOSE_CLUSTER,
        episode="overdose_cluster/vesterbro/x",
        late=True,
    )
    [alert] = project([wrap(raised, local(12), None, "vesterbro")], CITY).alerts
    assert alert.late is True


def test_an_unknown_district_in_a_payload_is_dead_lettered_with_its_reason() -> None:
    ack = p.DrugAlertAcknowledged(
        alert_id=uuid.uuid4().hex,
        district="atlantis",
        acknowledged_by="ops",
        seconds_to_acknowledge=60.0,
    )
    raised = p.DrugAlertRaised(
        alert_id=uuid.uuid4().hex,
        district="atlantis",
        reason=AlertReason.OVERDOSE_CLUSTER,
        episode="e",
    )
    street = p.StreetNeedlesCollected(district="atlantis", area="x", count=1)
    events = [
        wrap(street, local(9), "halmtorv"),
        wrap(ack, local(9), None, "vesterbro"),
        wrap(raised, local(9), None, "vesterbro"),
    ]
    decoded, rejected = decode_batch([record(e, i) for i, e in enumerate(events)], CITY)
    assert decoded == []
    assert [r.reason for r in rejected] == ["unknown district in payload"] * 3


def test_an_acknowledgement_keeps_when_and_by_whom() -> None:
    ack = p.DrugAlertAcknowledged(
        alert_id=uuid.uuid4().hex,
        district="vesterbro",
        acknowledged_by="ops-team",
        seconds_to_acknowledge=90.0,
    )
    [kept] = project([wrap(ack, local(12), None, "vesterbro")], CITY).alert_acks
    assert (kept.alert_id, kept.at, kept.by, kept.seconds) == (
        ack.alert_id,
        local(12),
        "ops-team",
        90.0,
    )


def test_a_batch_looks_up_each_source_once_and_checks_facility_events_only_there(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Work budget of decode_batch (speed only, the verdicts are tested above): a facility's
    district is looked up once per source and batch (never for a district source), and an
    event of a facility-level type at a known facility needs no check_references; the district
    level events (street collections) and an unknown facility's still get it."""
    lookups: Counter[str | None] = Counter()
    checked: list[str] = []
    real_lookup, real_check = City.district_of, domain._check_references

    def district_of(city: City, facility: str) -> str | None:
        lookups[facility] += 1
        return real_lookup(city, facility)

    def check(env: Any, facility: str | None, city: City) -> str | None:
        checked.append(env.type)
        return real_check(env, facility, city)

    monkeypatch.setattr(City, "district_of", district_of)
    monkeypatch.setattr(domain, "_check_references", check)
    events = [
        *(refused(local(9, m)) for m in range(5)),
        *(refused(local(9, m), facility="nordvest") for m in range(3)),
        *(street_needles(local(10, m), count=1) for m in range(2)),
        refused(local(11), facility="nowhere"),
    ]
    decoded, rejected = domain.decode_batch([record(e, i) for i, e in enumerate(events)], CITY)
    assert len(decoded) == 10 and [r.reason for r in rejected] == ["unknown facility in source"]
    assert lookups == {"halmtorv": 1, "nordvest": 1, "nowhere": 1}
    assert checked == ["dk.dcr.street_needles.collected"] * 2 + ["dk.dcr.visit.refused"]
    assert [d.district for d in decoded] == ["vesterbro"] * 5 + ["nordvest"] * 3 + ["vesterbro"] * 2


@pytest.mark.parametrize("remembered", [4096, 0])
def test_a_visits_substances_are_kept_sorted_once_each(
    remembered: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Whether a combination was remembered from an earlier start or not (the projector keeps
    up to a limit of them), a start's substances are its values, sorted, each once."""
    monkeypatch.setattr(domain, "_SUBSTANCES", {})
    monkeypatch.setattr(domain, "_SUBSTANCES_LIMIT", remembered)
    computed: list[tuple[Substance, ...]] = []
    compute = domain._substance_values

    def counted(substances: tuple[Substance, ...]) -> tuple[str, ...]:
        computed.append(substances)
        return compute(substances)

    monkeypatch.setattr(domain, "_substance_values", counted)
    s = Substance
    combos = [(s.HEROIN, s.COCAINE), (s.COCAINE, s.HEROIN, s.COCAINE), (s.HEROIN, s.COCAINE)]
    starts = [
        visit_started(f"v{i}", local(9 + i), client=i, substances=c) for i, c in enumerate(combos)
    ]
    changes = domain.project_decoded(_decoded(starts), CITY)
    assert [v.substances for v in changes.visit_starts.values()] == [("cocaine", "heroin")] * 3
    assert len(domain._SUBSTANCES) == min(remembered, 2)
    # a remembered combination is not computed again (the third start repeats the first's)
    assert len(computed) == (2 if remembered else 3)
