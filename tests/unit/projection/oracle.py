"""An independent, naive model of the read models, for comparing against the projection.

It decodes the raw Kafka records itself (CloudEvents binary mode as the contract describes it,
not through shared.events.envelope.decode), replays the events one by one in log order, keeping
whole objects in memory, and shares no code with services.projection (only the payload models
and the city). Expected values of the tests are computed here, not by the code under test:
district and city days, per-room days (:meth:`Oracle.room_days`), street collections per
district, area and day, per-facility (room) stock and live figures, and the rule the public
(suppressed) view must obey (:func:`public_violations`: shown cells true, small counts hidden,
no hidden cell narrowed below the threshold by a reader's interval reasoning over relations
written here, never by the suppression code).
"""

from __future__ import annotations

import json
import math
import re
import uuid
from collections import defaultdict
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from statistics import median
from typing import Any

from pydantic import ValidationError

from shared.city import City, PseudonymScope
from shared.events import payloads as p

_OVERDOSE = {"opioid_overdose", "stimulant_overamping"}

#: CloudEvents type -> payload model, written out from the event catalogue's documentation.
_MODELS: dict[str, type[p.Payload]] = {
    "dk.dcr.visit.started": p.VisitStarted,
    "dk.dcr.visit.ended": p.VisitEnded,
    "dk.dcr.visit.refused": p.VisitRefused,
    "dk.dcr.referral.made": p.ReferralMade,
    "dk.dcr.service.given": p.ServiceGiven,
    "dk.dcr.supplies.dispensed": p.SuppliesDispensed,
    "dk.dcr.sharps.returned": p.SharpsReturned,
    "dk.dcr.stock.delivered": p.StockDelivered,
    "dk.dcr.stock.counted": p.StockCounted,
    "dk.dcr.street_needles.collected": p.StreetNeedlesCollected,
    "dk.dcr.incident.reported": p.IncidentReported,
    "dk.dcr.drugcheck.result": p.DrugCheckResult,
    "dk.dcr.alert.raised": p.DrugAlertRaised,
    # read, not applied by this oracle: an alert's lifecycle and a room's void of its own report
    "dk.dcr.alert.acknowledged": p.DrugAlertAcknowledged,
    "dk.dcr.alert.resolved": p.DrugAlertResolved,
    "dk.dcr.alert.withdrawn": p.DrugAlertWithdrawn,
    "dk.dcr.report.voided": p.ReportVoided,
}
#: The current schema version of each type (1 where not named), from the catalogue's docs:
#: visit events carry the pseudonym's key id since version 2.
_VERSIONS: dict[str, int] = {"dk.dcr.visit.started": 2, "dk.dcr.visit.refused": 2}
_SOURCE = re.compile(r"/(facilities|districts)/([a-z0-9-]+)")


@dataclass(frozen=True)
class OracleEvent:
    """What the oracle reads of an event (the same attribute names as an Envelope)."""

    id: uuid.UUID
    type: str
    source: str
    time: datetime
    data: p.Payload


def decode_record(headers: Mapping[str, bytes], value: bytes | None) -> OracleEvent | None:
    """The event of a raw record in binary mode, or None when it is not a valid current-version
    event of a known type (such a record must be dead-lettered, not applied)."""
    try:
        h = {k: v.decode("utf-8", "replace") for k, v in headers.items()}
        if h.get("ce_specversion") != "1.0" or value is None:
            return None
        if h.get("content-type", "application/json").split(";")[0].strip() != "application/json":
            return None
        kind = h.get("ce_type", "")
        if kind not in _MODELS or int(h.get("ce_schemaversion", "1")) != _VERSIONS.get(kind, 1):
            return None
        source = h["ce_source"]
        if _SOURCE.fullmatch(source) is None:
            return None
        time = datetime.fromisoformat(h["ce_time"])
        if time.tzinfo is None:
            return None
        data = _MODELS[h["ce_type"]].model_validate(json.loads(value))
        return OracleEvent(uuid.UUID(h["ce_id"]), h["ce_type"], source, time, data)
    except (KeyError, ValueError, UnicodeDecodeError, ValidationError):
        return None


def _q(x: Decimal) -> float:
    return float(x.quantize(Decimal("0.01"), ROUND_HALF_UP))


def _plausible(visit: Mapping[str, Any]) -> bool:
    """A completed visit whose length counts: not ending before its start, at most 12 h
    (issue 13: longer ones were closed by rule)."""
    return "end" in visit and visit["start"] <= visit["end"] <= visit["start"] + timedelta(hours=12)


def _minutes(visit: Mapping[str, Any]) -> Decimal:
    return Decimal((visit["end"] - visit["start"]) / timedelta(microseconds=1)) / 60_000_000


class Oracle:
    def __init__(self, city: City) -> None:
        self.city = city
        self.seen: set[tuple[str, str]] = set()
        self.visits: dict[tuple[str, str], dict[str, Any]] = {}
        self.counts: dict[tuple[str, date], dict[str, Any]] = defaultdict(lambda: defaultdict(int))
        self.breakdown: dict[tuple[str, date], dict[str, dict[str, int]]] = defaultdict(
            lambda: defaultdict(lambda: defaultdict(int))
        )
        self.facility_refusals: dict[tuple[str, date], int] = defaultdict(int)
        #: per (facility, day): the room figures in the read API's cell names (measure[.key])
        self.rooms: dict[tuple[str, date], dict[str, Decimal]] = defaultdict(
            lambda: defaultdict(Decimal)
        )
        #: per (district, area, day): [reports, needles, kg]
        self.street: dict[tuple[str, str, date], list[Decimal]] = defaultdict(
            lambda: [Decimal(0), Decimal(0), Decimal(0)]
        )
        self.movements: list[tuple[str, str, datetime, int]] = []
        self.stock_counts: dict[tuple[str, str], tuple[datetime, int]] = {}
        self.alerts: dict[str, dict[str, Any]] = {}  # by episode
        self.alert_ids: set[str] = set()
        self.last_event: dict[str, datetime] = {}
        self.rejected = 0  # raw records that are no valid event (dead letters)

    def day(self, t: datetime) -> date:
        return t.astimezone(self.city.zone).date()

    def feed_records(self, records: Iterable[tuple[Mapping[str, bytes], bytes | None]]) -> Oracle:
        """Raw records (headers, value) in log order per partition; invalid ones are counted."""
        events = []
        for headers, value in records:
            event = decode_record(headers, value)
            if event is None or self._unknown_place(event):
                self.rejected += 1
            else:
                events.append(event)
        return self.feed(events)

    def _unknown_place(self, e: OracleEvent) -> bool:
        m = _SOURCE.fullmatch(e.source)
        assert m is not None
        kind, ident = m.groups()
        d = e.data
        district = getattr(d, "district", None)
        if district is not None and district not in self.city.district_by_id:
            return True
        alert_facility = d.facility_id if isinstance(d, p.DrugAlertRaised) else None
        if alert_facility is not None and alert_facility not in self.city.facility_by_id:
            return True
        if kind == "facilities":
            return ident not in self.city.facility_by_id
        street = isinstance(d, p.StreetNeedlesCollected | p.DrugAlertRaised)
        return (
            not street
            or ident not in self.city.district_by_id
            or (isinstance(d, p.StreetNeedlesCollected) and d.district != ident)
        )

    def feed(self, events: Iterable[Any]) -> Oracle:
        """Events (Envelopes or :class:`OracleEvent`) in log order per partition."""
        for e in events:
            key = (e.source, str(e.id))
            if key in self.seen:
                continue
            self.seen.add(key)
            self._one(e)
        return self

    def _one(self, e: Any) -> None:
        d = e.data
        fac = e.source.split("/")[2] if e.source.startswith("/facilities/") else None
        if fac is not None:
            self.last_event[fac] = max(self.last_event.get(fac, e.time), e.time)
        district = (
            d.district
            if isinstance(d, p.StreetNeedlesCollected | p.DrugAlertRaised)
            else self.city.facility_by_id[fac or ""].district
        )
        k = (district, self.day(e.time))
        c, b = self.counts[k], self.breakdown[k]
        if fac is not None:
            self._room_figures(self.rooms[(fac, k[1])], d)
        if isinstance(d, p.VisitStarted):
            v = self.visits.setdefault((fac or "", d.visit_id), {})
            if "start" not in v:
                v.update(start=e.time, district=district, data=d)
        elif isinstance(d, p.VisitEnded):
            v = self.visits.setdefault((fac or "", d.visit_id), {})
            v["end"] = min(v.get("end", e.time), e.time)
        elif isinstance(d, p.VisitRefused):
            c["refusals"] += 1
            b["refusals_by_reason"][d.reason.value] += 1
            self.facility_refusals[(fac or "", k[1])] += 1
        elif isinstance(d, p.ReferralMade):
            c["referrals"] += 1
            b["referrals_by_kind"][d.referral_to.value] += 1
        elif isinstance(d, p.ServiceGiven):
            c["services"] += 1
            b["services_by_kind"][d.service.value] += 1
        elif isinstance(d, p.SuppliesDispensed):
            for item, n in d.items.items():
                c["supplies_dispensed"] += n
                b["supplies_by_item"][item.value] += n
                self.movements.append((fac or "", item.value, e.time, -n))
        elif isinstance(d, p.StockDelivered):
            for item, n in d.items.items():
                self.movements.append((fac or "", item.value, e.time, n))
        elif isinstance(d, p.StockCounted):
            for item, n in d.items.items():
                old = self.stock_counts.get((fac or "", item.value))
                if old is None or e.time > old[0]:
                    self.stock_counts[(fac or "", item.value)] = (e.time, n)
        elif isinstance(d, p.SharpsReturned):
            c["sharps_returned_count"] += d.count or 0
            c["sharps_returned_kg"] += Decimal(str(d.weight_kg or 0))
        elif isinstance(d, p.StreetNeedlesCollected):
            c["street_needles_count"] += d.count or 0
            c["street_needles_kg"] += Decimal(str(d.weight_kg or 0))
            s = self.street[(d.district, d.area, k[1])]
            s[0] += 1
            s[1] += d.count or 0
            s[2] += Decimal(str(d.weight_kg or 0))
        elif isinstance(d, p.IncidentReported):
            c["incidents"] += 1
            c["overdoses"] += d.kind.value in _OVERDOSE
            c["life_threatening"] += d.life_threatening
            c["naloxone_doses"] += d.interventions.naloxone_doses
            c["ambulance_calls"] += d.interventions.ambulance_called
            c["hospital_transfers"] += d.outcome.value == "transferred_to_hospital"
            c["deaths"] += d.outcome.value == "died"
            b["incidents_by_kind"][d.kind.value] += 1
            b["incidents_by_outcome"][d.outcome.value] += 1
        elif isinstance(d, p.DrugCheckResult):
            c["drug_checks"] += 1
            c["drug_checks_unexpected"] += bool(set(d.found) - {d.expected, p.Substance.UNKNOWN})
        elif (
            isinstance(d, p.DrugAlertRaised)
            and d.episode not in self.alerts
            and d.alert_id not in self.alert_ids
        ):
            self.alert_ids.add(d.alert_id)
            self.alerts[d.episode] = {
                "alert_id": d.alert_id,
                "district": d.district,
                "reason": d.reason.value,
                "raised_at": e.time,
                "state": "open",
            }

    @staticmethod
    def _room_figures(r: dict[str, Decimal], d: p.Payload) -> None:
        """A room's day: every count by its measure, keyed ones also by ``measure.key``."""

        def add(measure: str, key: str | None = None, n: int | Decimal = 1) -> None:
            r[measure] += n
            if key is not None:
                r[f"{measure}.{key}"] += n

        if isinstance(d, p.VisitRefused):
            add("refusals", d.reason.value)
        elif isinstance(d, p.ReferralMade):
            add("referrals", d.referral_to.value)
        elif isinstance(d, p.ServiceGiven):
            add("services", d.service.value)
        elif isinstance(d, p.SuppliesDispensed):
            for item, n in d.items.items():
                add("supplies_dispensed", item.value, n)
        elif isinstance(d, p.SharpsReturned):
            add("sharps_returned_count", None, d.count or 0)
            add("sharps_returned_kg", None, Decimal(str(d.weight_kg or 0)))
        elif isinstance(d, p.IncidentReported):
            died = d.outcome.value == "died"
            add("incidents", d.kind.value)
            add("incident_outcomes", d.outcome.value)
            add("overdoses", None, d.kind.value in _OVERDOSE)
            add("life_threatening", None, d.life_threatening)
            add("life_threatening_survived", None, d.life_threatening and not died)
            add("naloxone_doses", None, d.interventions.naloxone_doses)
            add("ambulance_calls", None, d.interventions.ambulance_called)
            add("hospital_transfers", None, d.outcome.value == "transferred_to_hospital")
            add("deaths", None, died)
        elif isinstance(d, p.DrugCheckResult):
            unexpected = set(d.found) - {d.expected, p.Substance.UNKNOWN}
            add("drug_checks")
            add("drug_checks_unexpected", None, bool(unexpected))
            for sub in unexpected:
                add("unexpected_substances", sub.value)

    # --- views --------------------------------------------------------------------------

    def room_days(self, facility: str) -> dict[date, dict[str, int | float]]:
        """What GET /v1/rooms/<facility>/daily shows, per day with anything non-zero: the room's
        counts (keyed measures as ``measure.key`` and their total as ``measure``) and its visits
        of the day (by start): visits, distinct people, distinct new people, assisted
        injections."""
        out: dict[date, dict[str, int | float]] = {}
        days = {day for f, day in self.rooms if f == facility}
        started = [v for (f, _), v in self.visits.items() if f == facility and "start" in v]
        days |= {self.day(v["start"]) for v in started}
        for day in days:
            row: dict[str, int | float] = {
                cell: float(n) if cell.endswith("_kg") else int(n)
                for cell, n in self.rooms.get((facility, day), {}).items()
            }
            vs = [v["data"] for v in started if self.day(v["start"]) == day]
            row["visits"] = len(vs)
            row["people"] = len({v.client_pseudonym for v in vs})
            row["new_people"] = len({v.client_pseudonym for v in vs if v.first_visit})
            row["assisted_injections"] = sum(v.assisted_injection for v in vs)
            row = {cell: n for cell, n in row.items() if n}
            if row:
                out[day] = row
        return out

    def street_collections(self) -> dict[tuple[str, str, date], tuple[int, int, float]]:
        """Street needle collections per (district, area, day): reports, needles, kg."""
        return {k: (int(r), int(n), float(kg)) for k, (r, n, kg) in self.street.items()}

    def district_days(self) -> dict[tuple[str, date], dict[str, Any]]:
        """Non-zero figures per (district, day) in the API's field names (breakdowns: only
        non-zero keys)."""
        out: dict[tuple[str, date], dict[str, Any]] = {}
        started = [v for v in self.visits.values() if "start" in v]
        by_day: dict[tuple[str, date], list[dict[str, Any]]] = defaultdict(list)
        for v in started:
            by_day[(v["district"], self.day(v["start"]))].append(v)
        keys = set(by_day) | set(self.counts)
        for k in keys:
            row: dict[str, Any] = {}
            for f, n in self.counts.get(k, {}).items():
                row[f] = float(n) if isinstance(n, Decimal) else int(n)
            bd = {
                name: {key: n for key, n in m.items() if n}
                for name, m in self.breakdown.get(k, {}).items()
            }
            vs = by_day.get(k, [])
            if vs:
                row["visits"] = len(vs)
                row["unique_clients"] = len({v["data"].client_pseudonym for v in vs})
                row["new_clients"] = sum(v["data"].first_visit for v in vs)
                row["assisted_injections"] = sum(v["data"].assisted_injection for v in vs)
                routes: dict[str, int] = defaultdict(int)
                subs: dict[str, int] = defaultdict(int)
                for v in vs:
                    routes[v["data"].route.value] += 1
                    for s in set(v["data"].substances):
                        subs[s.value] += 1
                bd["visits_by_route"] = dict(routes)
                bd["visits_by_substance"] = dict(subs)
                mins = [_minutes(v) for v in vs if _plausible(v)]
                row["visits_completed"] = len(mins)
                if mins:
                    row["visit_minutes_median"] = _q(median(mins))
                    row["visit_minutes_mean"] = _q(sum(mins) / len(mins))
            row.update({name: m for name, m in bd.items() if m})
            out[k] = {f: v for f, v in row.items() if v not in (0, 0.0, {}, None)}
        return {k: v for k, v in out.items() if v}

    def _completed_minutes(self, day: date) -> list[Decimal]:
        return [
            _minutes(v)
            for v in self.visits.values()
            if "start" in v and self.day(v["start"]) == day and _plausible(v)
        ]

    def city_days(self) -> dict[date, dict[str, Any]]:
        """Non-zero city figures per day (the oracle's form): the districts' counts summed, but
        distinct people counted over the whole city; the median and mean over every completed
        visit of the day in the city."""
        out: dict[date, dict[str, Any]] = {}
        for (_, day), figures in self.district_days().items():
            total = out.setdefault(day, {})
            for f, v in figures.items():
                if f in ("visit_minutes_median", "visit_minutes_mean"):
                    continue
                if isinstance(v, dict):
                    m = total.setdefault(f, {})
                    for k, n in v.items():
                        m[k] = m.get(k, 0) + n
                else:
                    total[f] = total.get(f, 0) + v
        for day, total in out.items():
            for f in ("sharps_returned_kg", "street_needles_kg"):
                if f in total:  # floats summed: compare at the API's precision
                    total[f] = round(total[f], 6)
            # distinct people of the city: one pseudonym counts once whichever districts it visited
            # (pseudonyms are per room unless the city's scope is `city`: then one person)
            people = {
                v["data"].client_pseudonym
                for v in self.visits.values()
                if "start" in v and self.day(v["start"]) == day
            }
            if people:
                total["unique_clients"] = len(people)
            mins = self._completed_minutes(day)
            if mins:
                total["visit_minutes_median"] = _q(median(mins))
                total["visit_minutes_mean"] = _q(sum(mins) / len(mins))
        return out

    def public_truth(self, day: date) -> dict[str, dict[str, Any]]:
        """The unsuppressed tables the public view of ``day`` is drawn from: every district and
        the city (:data:`CITY_TABLE`). The city's distinct clients follow the city's pseudonym
        scope (shared.city.PseudonymScope): with ``city``, one pseudonym is one person city-wide;
        with ``facility``, pseudonyms are per room, so the city's distinct (room, code) pairs
        are the districts' added up."""
        districts = self.district_days()
        out = {d.id: districts.get((d.id, day), {}) for d in self.city.districts}
        city = dict(self.city_days().get(day, {}))
        if self.city.pseudonym_scope is PseudonymScope.FACILITY:
            people = sum(t.get("unique_clients", 0) for t in out.values())
            city.pop("unique_clients", None)
            if people:
                city["unique_clients"] = people
        out[CITY_TABLE] = city
        return out

    def facility_live(self, facility: str, now: datetime, stale_hours: float) -> dict[str, Any]:
        """What GET /facilities/<id>/live shows at ``now``: visits and refusals of the local day,
        booths in use (started within ``stale_hours`` (and at most 5 min ahead), not ended), the
        last event time."""
        today = self.day(now)
        in_use = sum(
            1
            for (f, _), v in self.visits.items()
            if f == facility
            and "start" in v
            and "end" not in v
            and now - timedelta(hours=stale_hours) < v["start"] <= now + timedelta(minutes=5)
        )
        last = self.last_event.get(facility)
        return {
            "booths_in_use": in_use,
            "visits_today": self.facility_visits(facility, today),
            "refusals_today": self.facility_refusals.get((facility, today), 0),
            "last_event_time": last,
        }

    def stock(self, facility: str) -> dict[str, int]:
        """On hand per item ever moved or counted at ``facility``."""
        items = {i for f, i, _, _ in self.movements if f == facility}
        items |= {i for f, i in self.stock_counts if f == facility}
        return {i: self.on_hand(facility, i) for i in sorted(items)}

    def facility_visits(self, facility: str, day: date) -> int:
        return sum(
            1
            for (f, _), v in self.visits.items()
            if f == facility and "start" in v and self.day(v["start"]) == day
        )

    def on_hand(self, facility: str, item: str) -> int:
        count = self.stock_counts.get((facility, item))
        since = count[0] if count else None
        moved = sum(
            d
            for f, i, t, d in self.movements
            if f == facility and i == item and (since is None or t > since)
        )
        return (count[1] if count else 0) + moved


def normalise(api_day: dict[str, Any]) -> dict[str, Any]:
    """An API day in the oracle's form: zeros, nulls and zero breakdown keys dropped."""
    out: dict[str, Any] = {}
    for f, v in api_day.items():
        if f in ("day", "suppressed"):
            continue
        if isinstance(v, dict):
            v = {k: n for k, n in v.items() if n}
        if v not in (0, 0.0, {}, None):
            out[f] = v
    return out


# --- the public (suppressed) view -------------------------------------------------------------

#: Counts about people (suppressed when small) and the breakdowns made of them, as the public API
#: documentation describes them.
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
PERSON_BREAKDOWNS: dict[str, tuple[str, ...]] = {
    "visits_by_route": tuple(r.value for r in p.Route),
    "refusals_by_reason": tuple(r.value for r in p.RefusalReason),
    "referrals_by_kind": tuple(r.value for r in p.ReferralKind),
    "services_by_kind": tuple(s.value for s in p.OnSiteService),
    "incidents_by_kind": tuple(k.value for k in p.IncidentKind),
    "incidents_by_outcome": tuple(o.value for o in p.Outcome),
    "visits_by_substance": tuple(x.value for x in p.Substance),  # in no relation: many per visit
}
CITY_TABLE = "*"

#: A cell: (table, field) or (table, breakdown, key); a relation: total = sum(members).
Cell = tuple[str, ...]
Relation = tuple[Cell, tuple[Cell, ...]]


def relations(districts: Iterable[str]) -> Iterator[Relation]:
    """Every linear relation a reader of the public tables of one day knows, written from what
    the figures mean: a breakdown adds up to its total, a named outcome or kind equals its count,
    and every cell of the city is the sum of the same cell of the districts."""
    districts = list(districts)
    for t in [*districts, CITY_TABLE]:

        def members(breakdown: str, keys: Iterable[str], t: str = t) -> tuple[Cell, ...]:
            return tuple((t, breakdown, k) for k in keys)

        yield (t, "visits"), members("visits_by_route", PERSON_BREAKDOWNS["visits_by_route"])
        for total, breakdown in (
            ("refusals", "refusals_by_reason"),
            ("referrals", "referrals_by_kind"),
            ("services", "services_by_kind"),
            ("incidents", "incidents_by_kind"),
            ("incidents", "incidents_by_outcome"),
        ):
            yield (t, total), members(breakdown, PERSON_BREAKDOWNS[breakdown])
        yield (t, "overdoses"), members("incidents_by_kind", sorted(_OVERDOSE))
        yield (t, "deaths"), members("incidents_by_outcome", ["died"])
        yield (
            (t, "hospital_transfers"),
            members("incidents_by_outcome", ["transferred_to_hospital"]),
        )
    for f in PERSON_FIELDS:
        yield (CITY_TABLE, f), tuple((d, f) for d in districts)
    for name, keys in PERSON_BREAKDOWNS.items():
        for k in keys:
            yield (CITY_TABLE, name, k), tuple((d, name, k) for d in districts)


def _cell(tables: Mapping[str, Mapping[str, Any]], c: Cell) -> Any:
    value: Any = tables[c[0]]
    for part in c[1:]:
        value = value.get(part, 0) if isinstance(value, Mapping) else None
    return value


def reader_bounds(
    public: Mapping[str, Mapping[str, Any]],
    truth: Mapping[str, Mapping[str, Any]],
    rels: Iterable[Relation],
) -> dict[Cell, tuple[float, float]]:
    """For every hidden cell in a relation, the range a reader derives by propagating intervals
    through ``total = sum(members)`` until nothing narrows: shown cells are exact, a hidden cell
    is at least 0, or at least 1 where it is not zero (the published rule assumes the reader
    even knows which hidden cells are zero). Propagation never narrows more than a linear
    program would, so a range narrower than the threshold here is a real leak."""
    rels = list(rels)
    bounds: dict[Cell, tuple[float, float]] = {}
    for total, members in rels:
        for c in (total, *members):
            shown = _cell(public, c)
            if shown is not None:
                bounds[c] = (shown, shown)
            elif c not in bounds:
                bounds[c] = (1 if _cell(truth, c) else 0, math.inf)
    for _ in range(100):
        changed = False
        for total, members in rels:
            lows = [bounds[m][0] for m in members]
            highs = [bounds[m][1] for m in members]
            narrowed = {total: (sum(lows), sum(highs))}
            t_low, t_high = bounds[total]
            for i, m in enumerate(members):
                others_low = sum(lows) - lows[i]
                others_high = sum(highs[:i]) + sum(highs[i + 1 :])
                narrowed[m] = (t_low - others_high, t_high - others_low)
            for c, (low, high) in narrowed.items():
                old_low, old_high = bounds[c]
                new = (max(old_low, low), min(old_high, high))
                if new != (old_low, old_high):
                    bounds[c] = new
                    changed = True
        if not changed:
            break
    return {c: b for c, b in bounds.items() if _cell(public, c) is None}


def _same(shown: Any, true: Any) -> bool:
    if isinstance(shown, float) or isinstance(true, float):
        return abs(float(shown) - float(true)) < 1e-6
    return bool(shown == true)


def public_violations(
    public: Mapping[str, Mapping[str, Any]],
    truth: Mapping[str, Mapping[str, Any]],
    threshold: int,
) -> list[str]:
    """How the public tables of one day (every district plus :data:`CITY_TABLE`, API form) break
    the published rule (docs/public-figures.md) against the true figures (the oracle's form or
    the API's: zeros may be left out): a shown cell must be the true figure; every count of
    people in 1..threshold-1 is hidden; quantities of things are never hidden; minutes are
    hidden when the completed-visit count is hidden or small; ``suppressed`` names exactly the
    hidden cells; and no hidden cell is narrowed by a reader (:func:`reader_bounds` over
    :func:`relations`, those the true figures satisfy) to a range narrower than ``threshold``.
    Empty: no violation."""
    out: list[str] = []
    minutes = ("visit_minutes_median", "visit_minutes_mean")
    for table, pub in public.items():
        hidden_names = set()
        for f in PERSON_FIELDS:
            true, shown = _cell(truth, (table, f)) or 0, pub[f]
            if shown is None:
                hidden_names.add(f)
            elif shown != true:
                out.append(f"{table}.{f} shows {shown}, truly {true}")
            if 0 < true < threshold and shown is not None:
                out.append(f"{table}.{f} = {true} is below {threshold} but shown")
        for name, keys in PERSON_BREAKDOWNS.items():
            for k in keys:
                true, shown = _cell(truth, (table, name, k)) or 0, pub[name][k]
                if shown is None:
                    hidden_names.add(f"{name}.{k}")
                elif shown != true:
                    out.append(f"{table}.{name}.{k} shows {shown}, truly {true}")
                if 0 < true < threshold and shown is not None:
                    out.append(f"{table}.{name}.{k} = {true} is below {threshold} but shown")
        completed = _cell(truth, (table, "visits_completed")) or 0
        for f in minutes:
            true_minutes = truth[table].get(f)
            if pub[f] is None:
                if true_minutes is not None:
                    hidden_names.add(f)
            elif pub["visits_completed"] is None or 0 < completed < threshold:
                out.append(f"{table}.{f} shown for hidden or few completed visits")
            elif pub[f] != true_minutes:
                out.append(f"{table}.{f} shows {pub[f]}, truly {true_minutes}")
        people = {*PERSON_FIELDS, *PERSON_BREAKDOWNS, *minutes, "suppressed"}
        for f, shown in pub.items():  # the rest: quantities of things, shown as they are
            if f in people:
                continue
            parts = shown.items() if isinstance(shown, Mapping) else [(None, shown)]
            for k, n in parts:
                where = f if k is None else f"{f}.{k}"
                true = (_cell(truth, (table, f)) if k is None else _cell(truth, (table, f, k))) or 0
                if n is None:
                    out.append(f"{table}.{where} hidden, but it is no count of people")
                elif not _same(n, true):
                    out.append(f"{table}.{where} shows {n}, truly {true}")
        if set(pub["suppressed"]) != hidden_names:
            out.append(f"{table}: suppressed lists {sorted(pub['suppressed'])}")
    rels = [
        (total, members)
        for total, members in relations(t for t in public if t != CITY_TABLE)
        if (_cell(truth, total) or 0) == sum(_cell(truth, m) or 0 for m in members)
    ]
    for c, (low, high) in reader_bounds(public, truth, rels).items():
        if high - low < threshold:
            out.append(f"{'.'.join(c)} narrowed to [{low}, {high}] by a reader")
    return out
