"""An independent, naive model of the read models, for comparing against the projection.

It replays events one by one in log order, keeping whole objects in memory, and shares no code
with services.projection (only the event types and the city). Expected values of the tests are
computed here, not by the code under test.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from datetime import date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from statistics import median
from typing import Any

from shared.city import City
from shared.events import payloads as p
from shared.events.envelope import Envelope

_OVERDOSE = {"opioid_overdose", "stimulant_overamping"}


def _q(x: Decimal) -> float:
    return float(x.quantize(Decimal("0.01"), ROUND_HALF_UP))


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
        self.movements: list[tuple[str, str, datetime, int]] = []
        self.stock_counts: dict[tuple[str, str], tuple[datetime, int]] = {}
        self.alerts: dict[str, dict[str, Any]] = {}  # by episode
        self.alert_ids: set[str] = set()
        self.last_event: dict[str, datetime] = {}

    def day(self, t: datetime) -> date:
        return t.astimezone(self.city.zone).date()

    def feed(self, events: Iterable[Envelope]) -> Oracle:
        for e in events:
            key = (e.source, str(e.id))
            if key in self.seen:
                continue
            self.seen.add(key)
            self._one(e)
        return self

    def _one(self, e: Envelope) -> None:
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

    # --- views --------------------------------------------------------------------------

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
                mins = [
                    Decimal((v["end"] - v["start"]) / timedelta(microseconds=1)) / 60_000_000
                    for v in vs
                    # plausible only: not ending before the start, at most 12 h (issue 13)
                    if "end" in v and v["start"] <= v["end"] <= v["start"] + timedelta(hours=12)
                ]
                row["visits_completed"] = len(mins)
                if mins:
                    row["visit_minutes_median"] = _q(median(mins))
                    row["visit_minutes_mean"] = _q(sum(mins) / len(mins))
            row.update({name: m for name, m in bd.items() if m})
            out[k] = {f: v for f, v in row.items() if v not in (0, 0.0, {}, None)}
        return {k: v for k, v in out.items() if v}

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
