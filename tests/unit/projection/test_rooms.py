"""Per-room daily figures and street collections per area from events (pure projection)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

from services.projection.domain import decode_batch, first_occurrences
from services.projection.rooms import RoomChanges, room_changes, room_retraction
from shared.events import payloads as p
from shared.events.envelope import Envelope
from shared.events.vocabulary import IncidentKind, Outcome, ReferralKind, Substance, SupplyItem
from tests.unit.projection import factory as f

# 10:00 UTC is 11:00 or 12:00 in Copenhagen: the same local day whatever the season
T0 = datetime(2026, 3, 10, 10, 0, tzinfo=UTC)
DAY = date(2026, 3, 10)


def _changes(events: list[Envelope]) -> RoomChanges:
    decoded, rejected = decode_batch([f.record(e, i) for i, e in enumerate(events)], f.CITY)
    assert not rejected
    return room_changes(first_occurrences(decoded))


def _street(at: datetime, area: str, kg: float) -> Envelope:
    data = p.StreetNeedlesCollected(district="vesterbro", area=area, count=10, weight_kg=kg)
    return f.wrap(data, at, None, "vesterbro")


def _events() -> list[Envelope]:
    return [
        f.dispensed(T0, {SupplyItem.NEEDLES: 120, SupplyItem.SWABS: 40}),
        f.dispensed(T0, {SupplyItem.NEEDLES: 90}),
        f.dispensed(T0, {SupplyItem.NEEDLES: 30}, facility="maendenes-hjem"),
        f.incident(T0, life_threatening=True, naloxone=2, ambulance=True),
        f.incident(T0, IncidentKind.SEIZURE, life_threatening=False),
        f.incident(T0, life_threatening=True, outcome=Outcome.DIED),
        f.referral(T0, ReferralKind.HOUSING),
        f.drug_check(T0, Substance.HEROIN, (Substance.HEROIN, Substance.FENTANYL)),
        f.sharps(T0, count=100, weight_kg=0.7),
        _street(T0, "Halmtorvet", 1.2),
        _street(T0 + timedelta(hours=1), "Halmtorvet", 0.1),
        _street(T0, "Skelbækgade", 0.8),
    ]


def test_room_figures_are_per_room_and_per_day() -> None:
    room = _changes(_events()).room
    h = {(m, k): v for (fac, d, m, k), v in room.items() if fac == "halmtorv" and d == DAY}
    assert h[("supplies_dispensed", "needles")] == 210
    assert h[("supplies_dispensed", "swabs")] == 40
    assert room[("maendenes-hjem", DAY, "supplies_dispensed", "needles")] == 30
    assert h[("incidents", "opioid_overdose")] == 2
    assert h[("incidents", "seizure")] == 1
    assert h[("life_threatening", "")] == 2
    assert h[("life_threatening_survived", "")] == 1  # one of the two died
    assert h[("deaths", "")] == 1
    assert h[("naloxone_doses", "")] == 2
    assert h[("ambulance_calls", "")] == 1
    assert h[("referrals", "housing")] == 1
    assert h[("unexpected_substances", "fentanyl")] == 1
    assert h[("sharps_returned_kg", "")] == Decimal("0.7")
    assert ("hospital_transfers", "") not in h  # zeros have no row


def test_street_collections_by_area() -> None:
    street = _changes(_events()).street
    halm = street[("vesterbro", "Halmtorvet", DAY)]
    assert (halm.reports, halm.needles, halm.kg) == (2, 20, Decimal("1.3"))
    assert street[("vesterbro", "Skelbækgade", DAY)].kg == Decimal("0.8")


def test_any_batching_gives_the_same_sums() -> None:
    events = _events()
    whole = _changes(events)
    parts = [_changes(events[:5]), _changes(events[5:9]), _changes(events[9:])]
    summed: dict[object, int | Decimal] = {}
    for part in parts:
        for k, v in part.room.items():
            summed[k] = summed.get(k, 0) + v
    assert summed == whole.room


def test_a_retracted_event_is_undone_exactly() -> None:
    """A void (or an id found conflicting) undoes what the event added, and nothing else."""
    events = _events()
    voided = [events[3], events[-1]]  # an overdose with naloxone, and a street report
    kept = [e for e in events if e not in voided]
    whole, undo = _changes(events), room_retraction(voided, f.CITY.zone)
    expected = _changes(kept)
    room = {k: whole.room.get(k, 0) + undo.room.get(k, 0) for k in whole.room | undo.room}
    assert {k: v for k, v in room.items() if v} == expected.room
    for key, delta in undo.street.items():
        total = whole.street[key]
        left = (total.reports + delta.reports, total.needles + delta.needles, total.kg + delta.kg)
        want = expected.street.get(key)
        assert left == ((want.reports, want.needles, want.kg) if want else (0, 0, Decimal(0)))
    assert undo.room[("halmtorv", DAY, "naloxone_doses", "")] == -2
