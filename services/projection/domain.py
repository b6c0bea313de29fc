"""The projection logic as pure functions: Kafka records -> events -> read-model changes.

No I/O here (no aiokafka, asyncpg or FastStream): :mod:`.store` applies the :class:`Changes`
in one transaction, :mod:`.consumer` feeds the records.

Invariants:

* Batch independence. Applying the events of a log in batches of any size gives the same read
  models: every change is either a sum (counts, exact ``Decimal`` weights), a greatest/least
  (last event time, visit end), a first-wins upsert in log order (visit start, stock count at
  equal times, alerts per episode) or a recompute from the ``visits`` facts (visit counts,
  unique clients, median/mean minutes, route/substance breakdowns). This is what makes a rebuild
  equal to the live run.
* Days are calendar days in the city's time zone, taken from the event's ``time`` (DST-correct);
  a visit belongs to the day it started.
* A record is either applied or rejected (dead-lettered) with a reason that never contains
  payload values; nothing is silently dropped.
* Nothing here logs or returns a clear client code (there is none in events) and pseudonyms only
  go to the ``visits`` facts.
* Either representation of an event is projected alike: the hot path's
  :class:`shared.events.fast_decode.Event` (payload as a msgspec Struct, what
  :func:`decode_batch` makes) or the contract's :class:`shared.events.envelope.Envelope`
  (pydantic payload). Both are read through :mod:`shared.events.views`, dispatching on the
  CloudEvents type string; their values are equal (tests/unit/test_fast_decode_parity.py).
* A vocabulary member's text is read as ``member._value_`` (the value the enum stores; the
  ``.value`` property is a Python-level descriptor, ~0.3 us a read on the hot path).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import Any, NamedTuple, Protocol, cast
from zoneinfo import ZoneInfo

import msgspec

from services.projection import schema
from shared.city import City
from shared.events import views as v
from shared.events.envelope import BatchDecoder, DecodeError
from shared.events.fast_decode import Event, batch_decoder
from shared.events.payloads import unexpected_substances
from shared.events.views import EventView
from shared.events.vocabulary import OVERDOSE_KINDS, Outcome, Substance, SupplyItem

#: Event types whose payload names the district they belong to (:class:`views.DistrictNamedView`)
#: and that may come from a /districts/<id> source; every other type is reported at a facility
#: (its source must be /facilities/<known id>).
_DISTRICT_LEVEL = v.DISTRICT_LEVEL

#: district_daily columns changed by adding deltas (the rest are recomputed from visits).
INT_COLUMNS: tuple[str, ...] = schema.names(kind=schema.Kind.ADDITIVE, unit=schema.Unit.COUNT)
DECIMAL_COLUMNS: tuple[str, ...] = schema.names(kind=schema.Kind.ADDITIVE, unit=schema.Unit.KG)
#: facility_daily columns changed by adding deltas.
FACILITY_INT_COLUMNS: tuple[str, ...] = schema.names(
    kind=schema.Kind.ADDITIVE, table=schema.FACILITY_DAILY
)

#: Default longest plausible visit (ProjectionSettings.max_visit_hours): a longer one is closed
#: by rule and left out of the duration figures, like one that ends before it starts.
DEFAULT_MAX_VISIT = timedelta(hours=12)

DayKey = tuple[str, date]  # (district or facility, local day)
BreakdownKey = tuple[str, date, str, str]  # (district, day, dimension, key)


@dataclass(frozen=True, slots=True)
class RawRecord:
    """A Kafka record as consumed (``topic`` is the physical name, with any test prefix)."""

    topic: str
    partition: int
    offset: int
    timestamp_ms: int
    key: bytes | None
    value: bytes | None
    headers: tuple[tuple[str, bytes], ...]


class KafkaRecord(Protocol):
    """What the projection reads of a consumed record (aiokafka's ConsumerRecord as it is, or a
    :class:`RawRecord`): decoding needs no copy of it."""

    @property
    def topic(self) -> str: ...
    @property
    def partition(self) -> int: ...
    @property
    def offset(self) -> int: ...
    @property
    def key(self) -> bytes | None: ...
    @property
    def value(self) -> bytes | None: ...
    @property
    def headers(self) -> Sequence[tuple[str, bytes]]: ...


# The records built once or more per event on the hot path (Decoded, VisitStart, VisitEnd,
# StockMovement, StockCountReport) are frozen msgspec Structs: built in C (a 7-field Struct in
# 0.08 us, a slotted dataclass in 0.28, a frozen one ~4x that) and not tracked by the garbage
# collector (``gc=False``): each holds immutable values or objects that never refer back to it,
# so it can be in no reference cycle.
class Decoded(msgspec.Struct, frozen=True, gc=False):
    """A record's event, with what every later step needs computed once (they are hot)."""

    record: KafkaRecord
    #: The hot path's :class:`shared.events.fast_decode.Event` (a contract Envelope in tests).
    event: EventView
    #: (CloudEvents source, id): the deduplication key.
    dedup_key: tuple[str, str]
    #: The facility the event happened at; None for district-level events.
    facility: str | None
    #: The district the event belongs to.
    district: str
    #: The event's ``time`` in the city's zone (its local day and opening hours; converted once:
    #: ``astimezone`` is one of the hot path's dearer calls).
    local: datetime
    #: The schema version the record's value was read at (stored with it by the claim: the
    #: stored event decodes back to this very event).
    schema_version: int


@dataclass(frozen=True, slots=True)
class Rejected:
    """A record for the dead-letter topic; ``reason`` is safe to log and put in a header."""

    record: KafkaRecord
    reason: str


class VisitStart(msgspec.Struct, frozen=True, gc=False):  # see Decoded
    facility: str
    visit_id: str
    district: str
    day: date
    start_time: datetime
    client_pseudonym: str
    #: Id of the secret the pseudonym was made under (rotation: docs/pseudonym-keys.md).
    pseudonym_key: str
    route: str
    substances: tuple[str, ...]
    assisted_injection: bool
    first_visit: bool


class VisitEnd(msgspec.Struct, frozen=True, gc=False):  # see Decoded
    facility: str
    visit_id: str
    district: str
    end_time: datetime


class StockMovement(msgspec.Struct, frozen=True, gc=False):  # see Decoded
    source: str
    id: str
    facility: str
    item: str
    at: datetime
    delta: int


class StockCountReport(msgspec.Struct, frozen=True, gc=False):  # see Decoded
    """One item of one stock count report, kept so that a void can restore the count before."""

    source: str
    id: str
    facility: str
    item: str
    counted_at: datetime
    quantity: int


@dataclass(frozen=True, slots=True)
class StockCount:
    facility: str
    item: str
    counted_at: datetime
    quantity: int


@dataclass(frozen=True, slots=True)
class Alert:
    alert_id: str
    episode: str
    district: str
    raised_at: datetime
    reason: str
    substance: str | None
    facility_id: str | None
    overdoses_in_window: int | None
    window_start: datetime | None
    window_end: datetime | None
    late: bool = False


@dataclass(frozen=True, slots=True)
class AlertAck:
    alert_id: str
    at: datetime
    by: str
    seconds: float


@dataclass
class Changes:
    """Everything one batch of new (deduplicated) events changes in the read models."""

    #: Districts whose rows this batch writes (the store locks them, sorted, to serialise
    #: concurrent instances per district).
    districts: set[str] = field(default_factory=set)
    daily: dict[DayKey, dict[str, int | Decimal]] = field(default_factory=dict)
    breakdown: Counter[BreakdownKey] = field(default_factory=Counter)
    facility_daily: dict[DayKey, Counter[str]] = field(default_factory=dict)
    facility_last_event: dict[str, datetime] = field(default_factory=dict)
    #: First start per visit in log order.
    visit_starts: dict[tuple[str, str], VisitStart] = field(default_factory=dict)
    #: Earliest end per visit.
    visit_ends: dict[tuple[str, str], VisitEnd] = field(default_factory=dict)
    stock_movements: list[StockMovement] = field(default_factory=list)
    #: Latest count per (facility, item); at equal times the first in log order.
    stock_counts: dict[tuple[str, str], StockCount] = field(default_factory=dict)
    #: Every count as reported (``stock_count_reports``), whichever is the latest.
    stock_count_reports: list[StockCountReport] = field(default_factory=list)
    #: First alert per alert id and per episode, in log order.
    alerts: list[Alert] = field(default_factory=list)
    #: Lifecycle: the first acknowledgement / resolution per alert wins (applied after alerts).
    alert_acks: list[AlertAck] = field(default_factory=list)
    alert_resolutions: dict[str, datetime] = field(default_factory=dict)
    #: A withdrawal (a void took the alert's basis) wins over every other state.
    alert_withdrawals: dict[str, datetime] = field(default_factory=dict)
    applied_types: Counter[str] = field(default_factory=Counter)
    #: Visit starts outside the facility's opening hours, per facility (accepted; a metric).
    outside_opening_hours: Counter[str] = field(default_factory=Counter)

    def add(self, district: str, day: date, column: str, amount: int | Decimal = 1) -> None:
        row = self.daily.setdefault((district, day), {})
        row[column] = row.get(column, 0) + amount

    def count(self, district: str, day: date, dimension: str, key: str, n: int = 1) -> None:
        self.breakdown[(district, day, dimension, key)] += n

    def facility_add(self, facility: str, day: date, column: str) -> None:
        self.facility_daily.setdefault((facility, day), Counter())[column] += 1


def local_day(t: datetime, zone: ZoneInfo) -> date:
    """The calendar day of instant ``t`` in ``zone`` (DST-correct: conversion, not an offset)."""
    return t.astimezone(zone).date()


def kg(value: float | None) -> Decimal:
    """An exact decimal of a reported weight (its shortest repr), so sums are order-independent."""
    return Decimal(repr(value)) if value is not None else Decimal(0)


def check_references(env: EventView, city: City) -> str | None:
    """Why ``env`` names something this city does not have (or a wrong kind of source); None if
    it is fine. The reason never contains payload values."""
    return _check_references(env, env.facility_id, city)


def _check_references(env: EventView, facility: str | None, city: City) -> str | None:
    kind = env.type
    if facility is None:
        if kind not in _DISTRICT_LEVEL:
            return f"{kind} requires a /facilities/<id> source"
        if env.key not in city.district_by_id:
            return "unknown district in source"
    elif facility not in city.facility_by_id:
        return "unknown facility in source"
    if kind not in _DISTRICT_LEVEL:  # most events: nothing more to check
        return None
    data = cast(v.DistrictNamedView, env.data)
    if data.district not in city.district_by_id:
        return "unknown district in payload"
    if kind == v.STREET_NEEDLES_COLLECTED and facility is None and env.key != data.district:
        return "source district differs from payload district"
    if kind == v.ALERT_RAISED:
        data = cast(v.AlertRaisedView, data)
        if data.facility_id is not None and data.facility_id not in city.facility_by_id:
            return "unknown facility in payload"
    return None


def decode_batch(
    records: Iterable[KafkaRecord], city: City, decode: BatchDecoder[Event] | None = None
) -> tuple[list[Decoded], list[Rejected]]:
    """Split records into decoded events and rejects (undecodable, invalid, unknown places).

    Records are decoded by the hot-path decoder :mod:`shared.events.fast_decode` (msgspec
    Structs derived from the contract models: the same verdicts and dead-letter reasons as the
    contract decoder, checked by tests/unit/test_fast_decode_parity.py), one
    :class:`shared.events.envelope.BatchDecoder` per batch (headers repeated across the batch's
    records are checked once): ``decode``, when a batch is decoded a slice at a time, else a
    new one."""
    decoded: list[Decoded] = []
    rejected: list[Rejected] = []
    zone = city.zone
    if decode is None:
        decode = batch_decoder()
    #: source -> (its facility or None, that facility's district if the city knows it, else
    #: None): a batch has few sources (a facility is a regex match of the source).
    places: dict[str, tuple[str | None, str | None]] = {}
    for r in records:
        try:
            env, version = decode.versioned(r.headers, r.value)
        except DecodeError as exc:
            rejected.append(Rejected(r, exc.reason))
            continue
        source = env.source
        place = places.get(source)
        if place is None:
            facility = env.facility_id
            known = city.district_of(facility) if facility is not None else None
            place = places[source] = (facility, known)
        facility, district = place
        # An event of a facility-level type from a known facility passes check_references
        # and belongs to its facility's district; any other is checked in full.
        if district is None or env.type in _DISTRICT_LEVEL:
            reason = _check_references(env, facility, city)
            if reason is not None:
                rejected.append(Rejected(r, reason))
                continue
            district = _district(env, facility, city)
        decoded.append(
            Decoded(
                r,
                env,
                (env.source, env.id),
                facility,
                district,
                env.time.astimezone(zone),
                version,
            )
        )
    return decoded, rejected


#: Dead-letter reason of a record whose (source, id) also carries a DIFFERENT event. Which came
#: first depends on consumption order across topics, so none of them counts (one applied
#: earlier is retracted; store.CONFLICTED marks the key). The ingest services refuse such an
#: id (409), so it can only come from elsewhere; never dropped silently.
CONFLICT = "event id already applied with a different body"


def same_event(a: EventView, b: EventView) -> bool:
    """Whether two records with one (source, id) carry the same report (a retry or replay).
    Both must be of one representation (the consumer decodes stored events as it decodes new
    ones: :func:`shared.events.fast_decode.decode`); a Struct never equals a pydantic model."""
    return a.type == b.type and a.time == b.time and a.data == b.data


def conflicting_repeats(events: Iterable[Decoded]) -> list[Decoded]:
    """The later records whose (source, id) an earlier record in ``events`` has, with a
    different report (dead-lettered with :data:`CONFLICT`; equal ones are plain duplicates)."""
    return split_repeats(events)[1]


class Repeats(NamedTuple):
    """The records of a batch split by their (source, id) (:func:`split_repeats`): every record
    is in exactly one of the three lists, each in the batch's order."""

    #: The first record of each (source, id).
    unique: list[Decoded]
    #: The later ones whose report differs from the first one's.
    conflicting: list[Decoded]
    #: The later ones equal to it: plain duplicates.
    duplicates: list[Decoded]


def split_repeats(events: Iterable[Decoded]) -> Repeats:
    """(:func:`first_occurrences`, :func:`conflicting_repeats`, the plain duplicates) of
    ``events`` in one pass."""
    first: dict[tuple[str, str], Decoded] = {}
    unique: list[Decoded] = []
    conflicting: list[Decoded] = []
    duplicates: list[Decoded] = []
    for d in events:
        seen = first.setdefault(d.dedup_key, d)
        if seen is d:
            unique.append(d)
        elif same_event(seen.event, d.event):
            duplicates.append(d)
        else:
            conflicting.append(d)
    return Repeats(unique, conflicting, duplicates)


def split_earlier(
    unique: list[Decoded],
    keys: frozenset[tuple[str, str]],
    earlier: Sequence[AbstractSet[tuple[str, str]]],
    never: AbstractSet[tuple[str, str]] = frozenset(),
) -> tuple[list[Decoded], list[Decoded]]:
    """(``unique`` without its repeats of ``earlier``, those repeats): the events whose (source,
    id) exactly one of the ``earlier`` key sets (the first occurrences of the batches prepared
    before) holds. ``keys``: those of ``unique``. A key in two of them, or in ``never``, stays
    in the first list. Whether a repeat is a plain duplicate or a conflict (the same id with
    another report) is decided against the stored event, as for any event claimed before.
    Pure; the key sets are intersected in C, so a batch without repeats costs no pass over its
    events."""
    seen = set(never)
    once: set[tuple[str, str]] = set()
    for batch in earlier:
        hits = keys & batch
        if hits:
            once -= hits & seen  # in two batches: which one was applied is the claim's to say
            once |= hits - seen
            seen |= hits
    if not once:
        return unique, []
    kept = [d for d in unique if d.dedup_key not in once]
    return kept, [d for d in unique if d.dedup_key in once]


#: Dead-letter reason of an event whose local day retention has sealed (services/.../retention).
SEALED = "day sealed by retention"


def sealed_events(events: Sequence[Decoded], sealed_before: date, city: City) -> list[Decoded]:
    """The events whose local day is before ``sealed_before`` (their aggregates are final)."""
    cut = datetime.combine(sealed_before, time(0), tzinfo=city.zone)
    return [d for d in events if d.event.time < cut]


def first_occurrences(events: Iterable[Decoded]) -> list[Decoded]:
    """The events with duplicates (same CloudEvents source + id) removed, first one kept."""
    return split_repeats(events)[0]


def district_of(env: EventView, city: City) -> str:
    """The district an (already checked) event belongs to."""
    return _district(env, env.facility_id, city)


def _district(env: EventView, facility: str | None, city: City) -> str:
    if env.type in _DISTRICT_LEVEL:
        return cast(v.DistrictNamedView, env.data).district
    district = city.district_of(facility) if facility is not None else None
    if district is None:  # check_references guarantees this cannot happen
        raise ValueError("event names no known facility")
    return district


def project(events: Sequence[EventView], city: City) -> Changes:
    """The read-model changes of ``events`` (new ones only, in log order per partition).

    Precondition: every event passed :func:`check_references` and was not applied before.
    """
    ch = Changes()
    zone = city.zone
    for env in events:
        facility = env.facility_id
        local = env.time.astimezone(zone)
        _project_one(ch, env, _district(env, facility, city), facility, local.date())
        _note_opening_hours(ch, env, facility, local, city)
    return ch


def project_decoded(events: Sequence[Decoded], city: City, into: Changes | None = None) -> Changes:
    """:func:`project` of decoded events (uses what :class:`Decoded` computed once).

    With ``into``, the changes are added to it (and it is returned): projecting a log's events
    in consecutive slices into one :class:`Changes` equals projecting them at once."""
    ch = Changes() if into is None else into
    for d in events:
        _project_one(ch, d.event, d.district, d.facility, d.local.date())
        _note_opening_hours(ch, d.event, d.facility, d.local, city)
    return ch


def _note_opening_hours(
    ch: Changes, env: EventView, facility: str | None, local: datetime, city: City
) -> None:
    """Count a visit started outside its facility's configured opening hours (it is accepted
    and counted like any other; the count is a metric for the facility's own follow-up).
    ``local``: the event's time in the city's zone."""
    if facility is None or env.type != v.VISIT_STARTED:
        return
    f = city.facility_by_id[facility]
    if f.opening_hours and not f.is_open(local):
        ch.outside_opening_hours[facility] += 1


def _project_one(
    ch: Changes, env: EventView, district: str, facility: str | None, day: date
) -> None:
    """``day``: the event's local day (:func:`local_day`)."""
    ch.districts.add(district)
    ch.applied_types[env.type] += 1
    if facility is not None:
        last = ch.facility_last_event.get(facility)
        if last is None or env.time > last:
            ch.facility_last_event[facility] = env.time
    rule = _RULES.get(env.type)
    if rule is not None:  # a void changes no figure here: see void_targets() and retraction()
        rule(ch, env, env.data, district, day, facility)


#: A rule of one event type: (changes, event, its payload as the type's view, district, local
#: day, facility or None for district-level events). Facility-level types are only ever
#: applied with a facility (check_references).
_Rule = Callable[[Changes, EventView, Any, str, date, "str | None"], None]


def _visit_started(
    ch: Changes,
    env: EventView,
    data: v.VisitStartedView,
    district: str,
    day: date,
    facility: str | None,
) -> None:
    assert facility is not None
    ch.visit_starts.setdefault(
        (facility, data.visit_id),
        VisitStart(
            facility=facility,
            visit_id=data.visit_id,
            district=district,
            day=day,
            start_time=env.time,
            client_pseudonym=data.client_pseudonym,
            pseudonym_key=data.pseudonym_key,
            route=data.route._value_,
            substances=_SUBSTANCES.get(data.substances) or _substance_values(data.substances),
            assisted_injection=data.assisted_injection,
            first_visit=data.first_visit,
        ),
    )


#: A visit start's substances (the payload's tuple of vocabulary members) -> their values,
#: sorted, each once (:func:`_substance_values`). A log repeats few combinations: each is
#: computed once, up to :data:`_SUBSTANCES_LIMIT` of them (then new ones are computed each time).
_SUBSTANCES: dict[tuple[Substance, ...], tuple[str, ...]] = {}
_SUBSTANCES_LIMIT = 4096


def _substance_values(substances: tuple[Substance, ...]) -> tuple[str, ...]:
    """The values of ``substances``, sorted, without repeats (remembered in :data:`_SUBSTANCES`)."""
    values = tuple(sorted({s._value_ for s in substances}))
    if len(_SUBSTANCES) < _SUBSTANCES_LIMIT:
        _SUBSTANCES[substances] = values
    return values


def _visit_ended(
    ch: Changes,
    env: EventView,
    data: v.VisitEndedView,
    district: str,
    day: date,
    facility: str | None,
) -> None:
    assert facility is not None
    key = (facility, data.visit_id)
    known = ch.visit_ends.get(key)
    if known is None or env.time < known.end_time:
        ch.visit_ends[key] = VisitEnd(facility, data.visit_id, district, env.time)


def _visit_refused(
    ch: Changes,
    env: EventView,
    data: v.VisitRefusedView,
    district: str,
    day: date,
    facility: str | None,
) -> None:
    assert facility is not None
    ch.add(district, day, "refusals")
    ch.count(district, day, "refusal_reason", data.reason._value_)
    ch.facility_add(facility, day, "refusals")


def _referral(
    ch: Changes,
    env: EventView,
    data: v.ReferralMadeView,
    district: str,
    day: date,
    facility: str | None,
) -> None:
    ch.add(district, day, "referrals")
    ch.count(district, day, "referral", data.referral_to._value_)


def _service(
    ch: Changes,
    env: EventView,
    data: v.ServiceGivenView,
    district: str,
    day: date,
    facility: str | None,
) -> None:
    ch.add(district, day, "services")
    ch.count(district, day, "service", data.service._value_)


def _supplies_dispensed(
    ch: Changes,
    env: EventView,
    data: v.ItemsView,
    district: str,
    day: date,
    facility: str | None,
) -> None:
    for item, n in _stock_moved(ch, env, data, facility, -1):
        ch.add(district, day, "supplies_dispensed", n)
        ch.count(district, day, "supply_item", item._value_, n)


def _stock_delivered(
    ch: Changes,
    env: EventView,
    data: v.ItemsView,
    district: str,
    day: date,
    facility: str | None,
) -> None:
    _stock_moved(ch, env, data, facility, 1)


def _stock_moved(
    ch: Changes, env: EventView, data: v.ItemsView, facility: str | None, sign: int
) -> list[tuple[SupplyItem, int]]:
    """Record the stock movements of supplies dispensed (``sign`` -1) or stock delivered (+1);
    returns the items and counts, in item order."""
    assert facility is not None
    items = sorted(data.items.items())
    event_key = v.event_id_text(env)
    for item, n in items:
        ch.stock_movements.append(
            StockMovement(env.source, event_key, facility, item._value_, env.time, sign * n)
        )
    return items


def _stock_counted(
    ch: Changes,
    env: EventView,
    data: v.ItemsView,
    district: str,
    day: date,
    facility: str | None,
) -> None:
    assert facility is not None
    event_key = v.event_id_text(env)
    for item, n in data.items.items():
        key = (facility, item._value_)
        known_count = ch.stock_counts.get(key)
        if known_count is None or env.time > known_count.counted_at:
            ch.stock_counts[key] = StockCount(facility, item._value_, env.time, n)
        ch.stock_count_reports.append(
            StockCountReport(env.source, event_key, facility, item._value_, env.time, n)
        )


def _sharps_returned(
    ch: Changes,
    env: EventView,
    data: v.CountOrWeightView,
    district: str,
    day: date,
    facility: str | None,
) -> None:
    ch.add(district, day, "sharps_returned_count", data.count or 0)
    ch.add(district, day, "sharps_returned_kg", kg(data.weight_kg))


def _street_needles(
    ch: Changes,
    env: EventView,
    data: v.CountOrWeightView,
    district: str,
    day: date,
    facility: str | None,
) -> None:
    ch.add(district, day, "street_needles_count", data.count or 0)
    ch.add(district, day, "street_needles_kg", kg(data.weight_kg))


def _incident(
    ch: Changes,
    env: EventView,
    data: v.IncidentView,
    district: str,
    day: date,
    facility: str | None,
) -> None:
    overdose = data.kind in OVERDOSE_KINDS
    ch.add(district, day, "incidents")
    ch.add(district, day, "overdoses", int(overdose))
    ch.add(district, day, "life_threatening", int(data.life_threatening))
    ch.add(district, day, "naloxone_doses", data.interventions.naloxone_doses)
    ch.add(district, day, "ambulance_calls", int(data.interventions.ambulance_called))
    ch.add(
        district, day, "hospital_transfers", int(data.outcome is Outcome.TRANSFERRED_TO_HOSPITAL)
    )
    ch.add(district, day, "deaths", int(data.outcome is Outcome.DIED))
    ch.count(district, day, "incident_kind", data.kind._value_)
    ch.count(district, day, "incident_outcome", data.outcome._value_)
    if facility is not None:
        ch.facility_add(facility, day, "incidents")
        if overdose:
            ch.facility_add(facility, day, "overdoses")


def _drug_check(
    ch: Changes,
    env: EventView,
    data: v.DrugCheckView,
    district: str,
    day: date,
    facility: str | None,
) -> None:
    ch.add(district, day, "drug_checks")
    unexpected = unexpected_substances(data.expected, data.found)
    ch.add(district, day, "drug_checks_unexpected", 1 if unexpected else 0)


def _alert(
    ch: Changes,
    env: EventView,
    data: v.AlertRaisedView,
    district: str,
    day: date,
    facility: str | None,
) -> None:
    if any(a.alert_id == data.alert_id or a.episode == data.episode for a in ch.alerts):
        return
    ch.alerts.append(
        Alert(
            alert_id=data.alert_id,
            episode=data.episode,
            district=data.district,
            raised_at=env.time,
            reason=data.reason._value_,
            substance=data.substance._value_ if data.substance else None,
            facility_id=data.facility_id,
            overdoses_in_window=data.overdoses_in_window,
            window_start=data.window_start,
            window_end=data.window_end,
            late=data.late,
        )
    )


def _alert_acknowledged(
    ch: Changes,
    env: EventView,
    data: v.AlertAcknowledgedView,
    district: str,
    day: date,
    facility: str | None,
) -> None:
    ch.alert_acks.append(
        AlertAck(data.alert_id, env.time, data.acknowledged_by, data.seconds_to_acknowledge)
    )


def _alert_resolved(
    ch: Changes,
    env: EventView,
    data: v.AlertFollowUpView,
    district: str,
    day: date,
    facility: str | None,
) -> None:
    ch.alert_resolutions.setdefault(data.alert_id, env.time)


def _alert_withdrawn(
    ch: Changes,
    env: EventView,
    data: v.AlertFollowUpView,
    district: str,
    day: date,
    facility: str | None,
) -> None:
    ch.alert_withdrawals.setdefault(data.alert_id, env.time)


#: Each event type's rule, its payload read through the type's view (mypy checks each rule
#: against its view; the table pairs a type string with the rule of its view). A type without
#: a rule (a void) changes no figure here.
_RULES: dict[str, _Rule] = {
    v.VISIT_STARTED: _visit_started,
    v.VISIT_ENDED: _visit_ended,
    v.VISIT_REFUSED: _visit_refused,
    v.REFERRAL_MADE: _referral,
    v.SERVICE_GIVEN: _service,
    v.SUPPLIES_DISPENSED: _supplies_dispensed,
    v.STOCK_DELIVERED: _stock_delivered,
    v.STOCK_COUNTED: _stock_counted,
    v.SHARPS_RETURNED: _sharps_returned,
    v.STREET_NEEDLES_COLLECTED: _street_needles,
    v.INCIDENT_REPORTED: _incident,
    v.DRUG_CHECK_RESULT: _drug_check,
    v.ALERT_RAISED: _alert,
    v.ALERT_ACKNOWLEDGED: _alert_acknowledged,
    v.ALERT_RESOLVED: _alert_resolved,
    v.ALERT_WITHDRAWN: _alert_withdrawn,
}


# --- corrections (dk.dcr.report.voided) ---------------------------------------------------------
#
# A void names a target by (its own source, target id), so a room can only void its own reports.
# Order independence: a target that arrives after its void is never applied (it is claimed in
# projection_events, like a duplicate); a target applied before is retracted when the void
# arrives (its additive changes negated, its visit row and stock movements removed, and the
# visit figures of its day recomputed; a voided stock count's reports removed and each item's
# count restored to the latest remaining report). Either way the read models end up as if the
# target had never been reported. Not retracted: drug alerts (district-level, raised by the
# incident service), the "last event seen" time of the facility.


def void_targets(events: Iterable[Decoded]) -> set[tuple[str, str]]:
    """The (source, id) keys the void events among ``events`` retract."""
    return {
        (d.event.source, str(cast(v.ReportVoidedView, d.event.data).target_id))
        for d in events
        if d.event.type == v.REPORT_VOIDED
    }


@dataclass
class Retraction:
    """What undoing already-applied events takes: the negated additive changes, and the visit
    rows, stock movements and stock count reports to remove."""

    changes: Changes
    visit_starts: list[tuple[str, str]] = field(default_factory=list)
    visit_ends: list[tuple[str, str, datetime]] = field(default_factory=list)
    stock_movements: list[tuple[str, str]] = field(default_factory=list)
    #: (source, id) of voided stock counts.
    stock_counts: list[tuple[str, str]] = field(default_factory=list)


def retraction(events: Sequence[EventView], city: City) -> Retraction:
    """How to undo ``events`` (each applied before and now voided)."""
    applied = project(events, city)
    neg = Changes(districts=set(applied.districts))
    neg.daily = {k: {c: -v for c, v in row.items()} for k, row in applied.daily.items()}
    neg.breakdown = Counter()
    for key, n in applied.breakdown.items():
        neg.breakdown[key] = -n
    neg.facility_daily = {}
    for fkey, counts in applied.facility_daily.items():
        neg.facility_daily[fkey] = Counter()
        for c, n in counts.items():
            neg.facility_daily[fkey][c] = -n
    return Retraction(
        changes=neg,
        visit_starts=sorted(applied.visit_starts),
        visit_ends=sorted(
            (e.facility, e.visit_id, e.end_time) for e in applied.visit_ends.values()
        ),
        stock_movements=sorted({(m.source, m.id) for m in applied.stock_movements}),
        stock_counts=sorted({(c.source, c.id) for c in applied.stock_count_reports}),
    )
