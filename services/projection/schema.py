"""The district read model (``district_daily``), declared once: every column with its kind.

Every other place derives from :data:`DISTRICT_DAILY`: the read API's day figures and their
OpenAPI descriptions (:mod:`.figures`, :mod:`.responses`), the columns the projector adds deltas
to (:mod:`.domain`), the SQL that writes ``district_daily`` and ``facility_daily`` (generated
in :mod:`.read_model_sql`, run by :mod:`.store`), the person counts the public figures suppress
(:mod:`.suppression`), the columns reconciliation compares with the log (:mod:`.reconcile`) and
the Prometheus series (:mod:`.domain_metrics`). ``tests/unit/projection/test_schema.py`` checks
the declaration against the migrations (deploy/postgres/migrations) and the generated SQL
against the declaration.

Adding a figure: one :class:`Column` here, one migration adding the column, the projector rule
(:mod:`.domain` for an additive one, :data:`.read_model_sql.VISIT_RULES` for one recomputed from
the visits), and reconciliation's own count of it from the log (:mod:`.reconcile`, deliberately
independent of the projector).

The per-room table (``room_daily``, one row per measure and key, and the visit figures counted
from ``visits``) is declared once too, in :data:`ROOM_TABLE`: the projector's measures
(:mod:`.rooms`), the cells of room and period tables and what they suppress
(:mod:`.period_figures`), the visit figures read (:mod:`.period_queries`) and the read API's
description of the cells (:mod:`.responses`) derive from it; :data:`STREET_COLLECTIONS` declares
the amounts of ``street_collections_daily``. Adding a room measure: one :class:`Measure` here
(no migration: ``room_daily`` keeps measures as rows) and the rule in :mod:`.rooms`.

Pure: no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from shared.events.vocabulary import (
    IncidentKind,
    OnSiteService,
    Outcome,
    ReferralKind,
    RefusalReason,
    Substance,
    SupplyItem,
)


class Kind(StrEnum):
    """How the projector maintains a column."""

    #: A sum of per-event deltas (a void subtracts its event's delta again).
    ADDITIVE = "additive"
    #: Recomputed from the day's ``visits`` rows whenever a batch touches the day.
    RECOMPUTED = "recomputed"


class Unit(StrEnum):
    COUNT = "count"
    KG = "kg"
    MINUTES = "minutes"
    #: Internal (not shown): lets district means add up to a city mean.
    SECONDS = "seconds"


class Counts(StrEnum):
    """What a count counts: people are suppressed when small in public figures; things (needles,
    supplies) are shown as they are."""

    PEOPLE = "people"
    THINGS = "things"


@dataclass(frozen=True, slots=True)
class Metric:
    """A Prometheus series of the column (:mod:`.domain_metrics`): ``total`` is a counter summed
    over every day, ``today`` a gauge of the city's current day, both per district."""

    total: str | None = None
    total_help: str = ""
    today: str | None = None
    today_help: str = ""


@dataclass(frozen=True, slots=True)
class Column:
    """One column of ``district_daily``. Invariant: ``counts`` is set exactly for COUNT units."""

    name: str
    kind: Kind
    unit: Unit
    description: str
    counts: Counts | None = None
    metric: Metric = Metric()
    example: int | float = 0
    #: Also kept per room and day in ``facility_daily`` (the room's figures of today).
    per_facility: bool = False

    @property
    def person_count(self) -> bool:
        return self.counts is Counts.PEOPLE

    @property
    def nullable(self) -> bool:
        """NULL while there is nothing to measure (a median or mean of no completed visit);
        every other column is 0 then (``NOT NULL DEFAULT 0``)."""
        return self.unit is Unit.MINUTES

    @property
    def shown(self) -> bool:
        """Part of the read API's day figures (the seconds total is internal)."""
        return self.unit is not Unit.SECONDS

    @property
    def reconciled(self) -> bool:
        """Compared with the event log by reconciliation (counts and weights; medians and means
        are not sums)."""
        return self.unit in (Unit.COUNT, Unit.KG)


_A, _R = Kind.ADDITIVE, Kind.RECOMPUTED
_N, _KG = Unit.COUNT, Unit.KG
_P, _T = Counts.PEOPLE, Counts.THINGS

DISTRICT_DAILY: tuple[Column, ...] = (
    Column(
        "visits",
        _R,
        _N,
        "Visits started that day",
        _P,
        Metric(today="dcr_district_visits_today", today_help="Visits started today"),
        example=41,
        per_facility=True,
    ),
    Column(
        "unique_clients",
        _R,
        _N,
        "Distinct pseudonyms among the day's visits (per room unless pseudonym_scope is city; "
        "the city's figure is the distinct count city-wide)",
        _P,
        Metric(today="dcr_district_unique_clients_today", today_help="Distinct clients today"),
        example=29,
    ),
    Column("new_clients", _R, _N, "Clients seen for the first time", _P, example=2),
    Column("assisted_injections", _R, _N, "Visits with an assisted injection", _P, example=1),
    Column(
        "visits_completed", _R, _N, "Visits that ended (with a plausible duration)", _P, example=38
    ),
    Column(
        "visit_minutes_median",
        _R,
        Unit.MINUTES,
        "Median visit duration in minutes (null: no completed visit)",
        example=23.5,
    ),
    Column(
        "visit_minutes_mean",
        _R,
        Unit.MINUTES,
        "Mean visit duration in minutes (null: no completed visit)",
        example=26.12,
    ),
    Column("visit_seconds_total", _R, Unit.SECONDS, "Seconds of the completed visits summed"),
    Column(
        "refusals",
        _A,
        _N,
        "Clients turned away",
        _P,
        Metric(today="dcr_district_refusals_today", today_help="Clients turned away today"),
        example=3,
        per_facility=True,
    ),
    Column("referrals", _A, _N, "Referrals made (treatment, housing, ...)", _P, example=4),
    Column("services", _A, _N, "On-site services given", _P, example=6),
    Column("supplies_dispensed", _A, _N, "Supply items handed out", _T, example=230),
    Column(
        "sharps_returned_count",
        _A,
        _N,
        "Used sharps returned to the room",
        _T,
        Metric(
            total="dcr_sharps_returned",
            total_help="Used sharps returned to facilities",
            today="dcr_district_sharps_returned_today",
            today_help="Used sharps returned today",
        ),
        example=180,
    ),
    Column(
        "sharps_returned_kg",
        _A,
        _KG,
        "Weight of the returned sharps (kg)",
        metric=Metric(
            total="dcr_sharps_returned_grams",
            total_help="Weight of used sharps returned to facilities",
        ),
        example=1.25,
    ),
    Column(
        "incidents",
        _A,
        _N,
        "Incidents reported",
        _P,
        Metric(today="dcr_district_incidents_today", today_help="Incidents today"),
        example=2,
        per_facility=True,
    ),
    Column(
        "overdoses",
        _A,
        _N,
        "Overdoses treated (opioid overdose, overamping)",
        _P,
        Metric(
            total="dcr_overdoses",
            total_help="Overdoses treated (opioid overdose, overamping)",
            today="dcr_district_overdoses_today",
            today_help="Overdoses treated today",
        ),
        example=1,
        per_facility=True,
    ),
    Column(
        "life_threatening",
        _A,
        _N,
        "Incidents staff judged life-threatening (lives probably saved)",
        _P,
        Metric(
            total="dcr_life_threatening_incidents",
            total_help="Incidents staff judged life-threatening (lives probably saved)",
            today="dcr_district_life_threatening_incidents_today",
            today_help="Life-threatening incidents today (lives probably saved)",
        ),
        example=1,
    ),
    Column(
        "naloxone_doses",
        _A,
        _N,
        "Naloxone doses given",
        _P,
        Metric(
            total="dcr_naloxone_doses",
            total_help="Naloxone doses given",
            today="dcr_district_naloxone_doses_today",
            today_help="Naloxone doses given today",
        ),
        example=2,
    ),
    Column("ambulance_calls", _A, _N, "Ambulances called", _P, example=1),
    Column("hospital_transfers", _A, _N, "Clients taken to hospital", _P, example=0),
    Column("deaths", _A, _N, "Deaths", _P, example=0),
    Column("drug_checks", _A, _N, "Drug checks done", _P, example=3),
    Column("drug_checks_unexpected", _A, _N, "Drug checks that found something unexpected", _P),
    Column(
        "street_needles_count",
        _A,
        _N,
        "Needles collected in the street by sanitation teams",
        _T,
        Metric(
            total="dcr_street_needles_collected",
            total_help="Needles collected in the street by sanitation teams",
            today="dcr_district_street_needles_collected_today",
            today_help="Needles collected in the street today",
        ),
        example=57,
    ),
    Column(
        "street_needles_kg",
        _A,
        _KG,
        "Weight of the needles collected in the street (kg)",
        metric=Metric(
            total="dcr_street_needles_collected_grams",
            total_help="Weight of needles collected in the street",
            today="dcr_district_street_needles_collected_grams_today",
            today_help="Weight of needles collected in the street today",
        ),
        example=0.4,
    ),
)
COLUMNS: dict[str, Column] = {c.name: c for c in DISTRICT_DAILY}
#: The columns of ``facility_daily`` (per room and day, besides its key), maintained like the
#: district's.
FACILITY_DAILY: tuple[Column, ...] = tuple(c for c in DISTRICT_DAILY if c.per_facility)


def names(
    *,
    kind: Kind | None = None,
    unit: Unit | None = None,
    table: tuple[Column, ...] = DISTRICT_DAILY,
) -> tuple[str, ...]:
    """The columns of ``table`` of ``kind`` and ``unit`` (None: any), in declaration order."""
    return tuple(
        c.name
        for c in table
        if (kind is None or c.kind is kind) and (unit is None or c.unit is unit)
    )


#: The facts of a ``visits`` row its start reports (the row's key is (facility, visit_id) with
#: its district; ``end_time`` comes from the end): the first start wins, a voided start clears
#: them. The visit figures above are recomputed from these rows.
VISIT_START_FACTS: tuple[str, ...] = (
    "day",
    "start_time",
    "client_pseudonym",
    "pseudonym_key",
    "route",
    "substances",
    "assisted_injection",
    "first_visit",
)


class Source(StrEnum):
    """Where a room measure comes from."""

    #: Counted from the ``visits`` facts over the asked range (distinct people exact).
    VISITS = "visits"
    #: Summed from ``room_daily`` rows (``key`` '' for a plain measure).
    ROOM_DAILY = "room_daily"


@dataclass(frozen=True, slots=True)
class Measure:
    """One measure of a room's table. Invariant: a keyed measure (``keys`` not empty) is the sum
    of its keys' cells ``<name>.<key>``; a plain one is the single cell ``<name>``."""

    name: str
    source: Source
    counts: Counts
    description: str
    #: The vocabulary of a keyed measure, in order (empty: plain).
    keys: tuple[str, ...] = ()

    @property
    def keyed(self) -> bool:
        return bool(self.keys)

    @property
    def person_count(self) -> bool:
        return self.counts is Counts.PEOPLE


def _keys(vocabulary: type[StrEnum]) -> tuple[str, ...]:
    return tuple(k.value for k in vocabulary)


_V, _D = Source.VISITS, Source.ROOM_DAILY

ROOM_TABLE: tuple[Measure, ...] = (
    Measure("visits", _V, _P, "Visits started"),
    Measure("people", _V, _P, "Distinct people (pseudonyms of the room) over the range"),
    Measure("new_people", _V, _P, "Distinct people seen for the first time"),
    Measure("assisted_injections", _V, _P, "Visits with an assisted injection"),
    Measure("refusals", _D, _P, "Clients turned away, by reason", _keys(RefusalReason)),
    Measure("referrals", _D, _P, "Referrals made, by kind", _keys(ReferralKind)),
    Measure("services", _D, _P, "On-site services given, by service", _keys(OnSiteService)),
    Measure("supplies_dispensed", _D, _T, "Supply items handed out, by item", _keys(SupplyItem)),
    Measure("incidents", _D, _P, "Incidents reported, by kind", _keys(IncidentKind)),
    Measure("incident_outcomes", _D, _P, "Incidents by outcome", _keys(Outcome)),
    Measure(
        "unexpected_substances",
        _D,
        _P,
        "Drug checks that found a substance not expected, by substance",
        _keys(Substance),
    ),
    Measure("sharps_returned_count", _D, _T, "Used sharps returned to the room"),
    Measure("sharps_returned_kg", _D, _T, "Weight of the returned sharps (kg)"),
    Measure("overdoses", _D, _P, "Overdoses treated (opioid overdose, overamping)"),
    Measure("life_threatening", _D, _P, "Incidents staff judged life-threatening"),
    Measure("life_threatening_survived", _D, _P, "Life-threatening incidents the client survived"),
    Measure("naloxone_doses", _D, _P, "Naloxone doses given"),
    Measure("ambulance_calls", _D, _P, "Ambulances called"),
    Measure("hospital_transfers", _D, _P, "Clients taken to hospital"),
    Measure("deaths", _D, _P, "Deaths"),
    Measure("drug_checks", _D, _P, "Drug checks done"),
    Measure("drug_checks_unexpected", _D, _P, "Drug checks that found something unexpected"),
)
MEASURES: dict[str, Measure] = {m.name: m for m in ROOM_TABLE}


def room_measures(*, source: Source, keyed: bool | None = None) -> tuple[str, ...]:
    """The measures from ``source`` (keyed, plain or None: both), in declaration order."""
    return tuple(
        m.name for m in ROOM_TABLE if m.source is source and (keyed is None or m.keyed is keyed)
    )


#: The amounts of ``street_collections_daily`` per (district, area, day): name -> unit.
STREET_COLLECTIONS: dict[str, Unit] = {
    "reports": Unit.COUNT,
    "needles": Unit.COUNT,
    "kg": Unit.KG,
}
