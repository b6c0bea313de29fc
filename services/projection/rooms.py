"""Per-room daily figures and street collections per area, as pure functions of applied events.

Companion of :mod:`.domain` (which keeps the district figures): the same decoded, deduplicated
events of a batch go through :func:`room_changes`, and :mod:`.rooms_store` writes the result in
the batch's transaction.

Invariants:

* Every change is a sum (integers, exact ``Decimal`` weights), so any batching of the log gives
  the same rows: a rebuild equals the live run.
* Days are calendar days in the city's time zone, from the event's ``time`` (as in domain).
* Visits are not counted here: visits, distinct people and new people of a room over any period
  are counted from the ``visits`` facts (exact over the period, never a sum of daily uniques).
* A voided or conflicting event already applied is undone by :func:`room_retraction` (the
  negated changes), in the same transaction as the district figures' retraction.
* Nothing here holds a pseudonym or any other personal value.
* Events of either representation (the hot path's Struct payloads, the contract's pydantic
  ones) are read alike, through :mod:`shared.events.views`, dispatching on the type string.
* A vocabulary member's text is read as ``member._value_`` (the value the enum stores; the
  ``.value`` property is a Python-level descriptor, ~0.3 us a read on the hot path).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from typing import Any, cast
from zoneinfo import ZoneInfo

from services.projection.domain import Decoded, kg, local_day
from services.projection.schema import Source, room_measures
from shared.events import views as v
from shared.events.payloads import unexpected_substances
from shared.events.views import EventView
from shared.events.vocabulary import OVERDOSE_KINDS, Outcome

#: Measures whose rows are keyed by a vocabulary value (total = sum of the keys), and the plain
#: ones (key ''): declared in :data:`.schema.ROOM_TABLE`.
KEYED_MEASURES: tuple[str, ...] = room_measures(source=Source.ROOM_DAILY, keyed=True)
PLAIN_MEASURES: tuple[str, ...] = room_measures(source=Source.ROOM_DAILY, keyed=False)
MEASURES: tuple[str, ...] = KEYED_MEASURES + PLAIN_MEASURES

RoomKey = tuple[str, date, str, str]  # (facility, day, measure, key)
StreetKey = tuple[str, str, date]  # (district, area, day)


@dataclass
class StreetDelta:
    reports: int = 0
    needles: int = 0
    kg: Decimal = Decimal(0)


@dataclass
class RoomChanges:
    """What one batch adds to ``room_daily`` and ``street_collections_daily``."""

    room: dict[RoomKey, int | Decimal] = field(default_factory=dict)
    street: dict[StreetKey, StreetDelta] = field(default_factory=dict)

    def add(
        self, facility: str, day: date, measure: str, key: str = "", n: int | Decimal = 1
    ) -> None:
        if n:
            k = (facility, day, measure, key)
            self.room[k] = self.room.get(k, 0) + n


def room_changes(events: Sequence[Decoded], into: RoomChanges | None = None) -> RoomChanges:
    """The room and street changes of ``events`` (new ones only; see domain.project), on the
    local days their :class:`Decoded` hold; added to ``into`` if given (the changes are sums:
    a batch's slices added in turn give the batch's changes)."""
    return _changes(((d.event, d.facility, d.local.date()) for d in events), into)


def room_retraction(events: Sequence[EventView], zone: ZoneInfo) -> RoomChanges:
    """What undoes ``events`` (each applied before, now voided or found conflicting): the
    negated changes. Room and street figures are sums only, so adding this restores them."""
    applied = _changes((e, _facility_of(e.source), local_day(e.time, zone)) for e in events)
    street = {k: StreetDelta(-v.reports, -v.needles, -v.kg) for k, v in applied.street.items()}
    return RoomChanges(room={k: -v for k, v in applied.room.items()}, street=street)


def _facility_of(source: str) -> str | None:
    prefix = "/facilities/"
    return source[len(prefix) :] if source.startswith(prefix) else None


def _changes(
    events: Iterable[tuple[EventView, str | None, date]], into: RoomChanges | None = None
) -> RoomChanges:
    """The changes of (event, facility or None, local day) triples, added to ``into``."""
    ch = RoomChanges() if into is None else into
    for event, facility, day in events:
        if event.type == v.STREET_NEEDLES_COLLECTED:
            data = cast(v.StreetNeedlesView, event.data)
            delta = ch.street.setdefault((data.district, data.area, day), StreetDelta())
            delta.reports += 1
            delta.needles += data.count or 0
            delta.kg += kg(data.weight_kg)
        elif facility is not None:
            rule = _RULES.get(event.type)
            if rule is not None:
                rule(ch, facility, day, event.data)
    return ch


def _refused(ch: RoomChanges, facility: str, day: date, data: v.VisitRefusedView) -> None:
    ch.add(facility, day, "refusals", data.reason._value_)


def _referral(ch: RoomChanges, facility: str, day: date, data: v.ReferralMadeView) -> None:
    ch.add(facility, day, "referrals", data.referral_to._value_)


def _service(ch: RoomChanges, facility: str, day: date, data: v.ServiceGivenView) -> None:
    ch.add(facility, day, "services", data.service._value_)


def _dispensed(ch: RoomChanges, facility: str, day: date, data: v.ItemsView) -> None:
    for item, n in sorted(data.items.items()):
        ch.add(facility, day, "supplies_dispensed", item._value_, n)


def _sharps(ch: RoomChanges, facility: str, day: date, data: v.CountOrWeightView) -> None:
    ch.add(facility, day, "sharps_returned_count", "", data.count or 0)
    ch.add(facility, day, "sharps_returned_kg", "", kg(data.weight_kg))


def _drug_check(ch: RoomChanges, facility: str, day: date, data: v.DrugCheckView) -> None:
    ch.add(facility, day, "drug_checks")
    unexpected = sorted(s._value_ for s in unexpected_substances(data.expected, data.found))
    if unexpected:
        ch.add(facility, day, "drug_checks_unexpected")
    for s in unexpected:
        ch.add(facility, day, "unexpected_substances", s)


def _incident(ch: RoomChanges, facility: str, day: date, data: v.IncidentView) -> None:
    died = data.outcome is Outcome.DIED
    ch.add(facility, day, "incidents", data.kind._value_)
    ch.add(facility, day, "incident_outcomes", data.outcome._value_)
    ch.add(facility, day, "overdoses", "", int(data.kind in OVERDOSE_KINDS))
    ch.add(facility, day, "life_threatening", "", int(data.life_threatening))
    ch.add(facility, day, "life_threatening_survived", "", int(data.life_threatening and not died))
    ch.add(facility, day, "naloxone_doses", "", data.interventions.naloxone_doses)
    ch.add(facility, day, "ambulance_calls", "", int(data.interventions.ambulance_called))
    ch.add(
        facility,
        day,
        "hospital_transfers",
        "",
        int(data.outcome is Outcome.TRANSFERRED_TO_HOSPITAL),
    )
    ch.add(facility, day, "deaths", "", int(died))


#: The room rule of each facility event type, its payload read through the type's view (the
#: table pairs a type string with the rule of its view); other types change no room figure.
_RULES: dict[str, Callable[[RoomChanges, str, date, Any], None]] = {
    v.VISIT_REFUSED: _refused,
    v.REFERRAL_MADE: _referral,
    v.SERVICE_GIVEN: _service,
    v.SUPPLIES_DISPENSED: _dispensed,
    v.SHARPS_RETURNED: _sharps,
    v.INCIDENT_REPORTED: _incident,
    v.DRUG_CHECK_RESULT: _drug_check,
}
