"""Issue 13 in the pure projector: one (source, id) for two different events is a conflict
(dead-lettered), an exact repeat a duplicate; a retraction negates exactly what an event added;
events of sealed days are recognised by their local day."""

from __future__ import annotations

import uuid
from datetime import date, datetime, time

from services.projection import domain
from shared.events import payloads as p
from shared.events.envelope import Envelope
from shared.events.fast_decode import event_of
from shared.events.vocabulary import IncidentKind, ReferralKind, SupplyItem, VoidReason
from tests.unit.projection import factory as f
from tests.unit.projection.factory import CITY

DAY = date(2026, 3, 29)  # a DST change in Copenhagen: days are still calendar days


def local(hh: int, mm: int = 0, day: date = DAY) -> datetime:
    return datetime.combine(day, time(hh, mm), tzinfo=CITY.zone)


def decoded(*envs: Envelope) -> list[domain.Decoded]:
    records = [f.record(e, offset=i) for i, e in enumerate(envs)]
    ok, rejected = domain.decode_batch(records, CITY)
    assert rejected == []
    return ok


def test_a_different_event_under_a_used_id_is_a_conflict_an_equal_one_a_duplicate() -> None:
    same = uuid.uuid4()
    first = f.wrap(p.ReferralMade(referral_to=ReferralKind.HOUSING), local(9), id=same)
    other = f.wrap(p.ReferralMade(referral_to=ReferralKind.MEDICAL_CARE), local(9), id=same)
    events = decoded(first, first, other)
    assert [d.event for d in domain.conflicting_repeats(events)] == [event_of(other)]
    assert domain.first_occurrences(events)[0].event == event_of(first)


def test_a_retraction_negates_what_the_event_added() -> None:
    events = [
        f.incident(local(10), IncidentKind.OPIOID_OVERDOSE, naloxone=2),
        f.dispensed(local(11), {SupplyItem.SYRINGES: 10}),
        f.visit_started("v1", local(12)),
        f.visit_ended("v1", local(12, 30)),
    ]
    added = domain.project(events, CITY)
    undo = domain.retraction(events, CITY)
    for key, row in added.daily.items():
        assert {c: -v for c, v in row.items()} == undo.changes.daily[key]
    assert {k: -n for k, n in added.breakdown.items()} == dict(undo.changes.breakdown)
    assert undo.visit_starts == [("halmtorv", "v1")]
    assert undo.visit_ends == [("halmtorv", "v1", local(12, 30))]
    assert undo.stock_movements == [(events[1].source, str(events[1].id))]


def test_void_targets_are_named_by_the_voiding_room_s_own_source() -> None:
    target = uuid.uuid4()
    void = f.wrap(p.ReportVoided(target_id=target, reason=VoidReason.MISTAKEN), local(9))
    foreign = f.wrap(
        p.ReportVoided(target_id=target, reason=VoidReason.MISTAKEN), local(9), facility="amager"
    )
    assert domain.void_targets(decoded(void, foreign)) == {
        ("/facilities/halmtorv", str(target)),
        ("/facilities/amager", str(target)),
    }


def test_events_before_the_sealed_day_are_recognised_in_local_time() -> None:
    events = decoded(f.referral(local(0, 30)), f.referral(local(23, 59, day=date(2026, 3, 28))))
    late = domain.sealed_events(events, DAY, CITY)
    assert [d.event.time for d in late] == [local(23, 59, day=date(2026, 3, 28))]
