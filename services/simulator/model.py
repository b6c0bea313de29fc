"""The stochastic facility model: a seeded, time-ordered stream of intended reports. PURE (no I/O,
no clock, no global random state): the output depends only on (city, params, seed, start, end,
facilities).

Each facility is a discrete-event simulation: arrivals follow the opening hours and an intraday
curve (a non-homogeneous Poisson process whose daily volume carries weekend/payday multipliers
and day-to-day noise); an arriving client takes the lowest free booth, else waits in a bounded
queue (refused for capacity when it is full or when patience runs out); a visit's length is
lognormal; overdoses, other incidents, drug checks, on-site services, referrals and supplies are
drawn per visit; sharps bins, stock counts and deliveries follow the day. Each district gets its
street needle sweeps.

Invariants of :func:`simulate`'s output:

* it is ordered by ``at`` (ties keep creation order); every ``at`` is >= ``start`` and < ``end``;
  times are whole seconds (UTC); ``seq`` counts 0, 1, 2, ... per lane;
* a visit starts and ends while its facility is open, and ends no later than the closing time of
  the opening interval it started in; at no instant are more visits open than the facility has
  booths (a visit occupies ``[start, end)``);
* a report that refers to a visit (``needs_visit``) comes after that visit's start in the stream
  and within the visit; a visit's end is the last report referring to it; visits still open at
  ``end`` have no end report;
* each facility (and district) draws from its own ``random.Random`` seeded from (seed, id), so a
  facility's stream does not depend on which other facilities are simulated.
"""

from __future__ import annotations

import hashlib
import heapq
import itertools
import math
import random
from collections import deque
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from enum import IntEnum, StrEnum
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

from services.simulator.params import SimParams, SupplyBundle
from shared.city import City, Facility, Weekday
from shared.events.vocabulary import (
    IncidentKind,
    OnSiteService,
    Outcome,
    ReferralKind,
    RefusalReason,
    Route,
    Severity,
    Substance,
    SupplyItem,
)

T = TypeVar("T")

SANITATION_PRINCIPAL = "sanitation-city"


class Service(StrEnum):
    INTAKE = "intake"
    SUPPLY = "supply"
    INCIDENT = "incident"


#: Short event name (the CloudEvents type without ``dk.dcr.``) -> (service, HTTP path).
ENDPOINTS: dict[str, tuple[Service, str]] = {
    "visit.started": (Service.INTAKE, "/v1/visits"),
    "visit.ended": (Service.INTAKE, "/v1/visits/end"),
    "visit.refused": (Service.INTAKE, "/v1/refusals"),
    "referral.made": (Service.INTAKE, "/v1/referrals"),
    "service.given": (Service.INTAKE, "/v1/services"),
    "supplies.dispensed": (Service.SUPPLY, "/v1/supplies/dispensed"),
    "sharps.returned": (Service.SUPPLY, "/v1/sharps/returned"),
    "stock.delivered": (Service.SUPPLY, "/v1/stock/deliveries"),
    "stock.counted": (Service.SUPPLY, "/v1/stock/counts"),
    "street_needles.collected": (Service.SUPPLY, "/v1/street-needles"),
    "incident.reported": (Service.INCIDENT, "/v1/incidents"),
    "drugcheck.result": (Service.INCIDENT, "/v1/drug-checks"),
}

OPIOIDS = frozenset({Substance.HEROIN, Substance.METHADONE, Substance.MORPHINE, Substance.FENTANYL})
STIMULANTS = frozenset({Substance.COCAINE, Substance.CRACK, Substance.AMPHETAMINE})
_WEEKDAYS: tuple[Weekday, ...] = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


@dataclass(frozen=True, slots=True)
class IntendedReport:
    """One request the simulator means to make. ``body`` is the JSON body (do not mutate it); for a
    report with ``needs_visit`` the sender adds ``visit_id`` (the id intake issued for the visit
    started by the report whose ``visit_ref`` equals it)."""

    at: datetime
    lane: str
    seq: int
    event: str
    principal: str
    body: Mapping[str, Any]
    visit_ref: str | None = None
    needs_visit: str | None = None

    @property
    def service(self) -> Service:
        return ENDPOINTS[self.event][0]

    @property
    def path(self) -> str:
        return ENDPOINTS[self.event][1]

    @property
    def event_type(self) -> str:
        """The CloudEvents type this report becomes."""
        return "dk.dcr." + self.event


# --- public helpers ---------------------------------------------------------------------------


def derive_seed(seed: int, *parts: str) -> int:
    """A 64-bit seed from the run's seed and a name (stable across Python versions and runs)."""
    digest = hashlib.sha256("|".join((str(seed), *parts)).encode()).digest()
    return int.from_bytes(digest[:8], "big")


def seeded_rng(seed: int, *parts: str) -> random.Random:
    """The random generator of one facility or district (a simulation, not cryptography)."""
    return random.Random(derive_seed(seed, *parts))  # noqa: S311


def booths_of(facility: Facility, params: SimParams) -> int:
    return params.booths.get(facility.id, facility.booths)


def base_visits_per_day(facility: Facility, params: SimParams) -> float:
    """Expected arrivals on an ordinary day, before multipliers, noise and clamping."""
    if facility.id in params.visits_per_day:
        return params.visits_per_day[facility.id]
    return booths_of(facility, params) * params.visits_per_booth_per_day


def last_banking_day(year: int, month: int) -> date:
    """The month's last Monday-Friday (public holidays are ignored)."""
    nxt = date(year + (month == 12), month % 12 + 1, 1)
    d = nxt - timedelta(days=1)
    while d.weekday() >= 5:
        d -= timedelta(days=1)
    return d


def is_payday_surge(d: date, through_day: int) -> bool:
    """From the month's last banking day through day ``through_day`` of the next month."""
    return d >= last_banking_day(d.year, d.month) or d.day <= through_day


def day_multiplier(d: date, params: SimParams) -> float:
    m = params.weekend_multiplier if d.weekday() >= 5 else 1.0
    if is_payday_surge(d, params.payday_surge_through_day):
        m *= params.payday_multiplier
    return m


def opening_intervals(
    facility: Facility, zone: ZoneInfo, day: date
) -> list[tuple[datetime, datetime]]:
    """The UTC intervals ``[open, close)`` that open on local ``day`` (a close < open passes
    midnight; "24:00" is the end of the day)."""
    hours = facility.opening_hours.get(_WEEKDAYS[day.weekday()])
    if hours is None:
        return []
    start_s, end_s = hours
    opens = _local(day, start_s, zone)
    closes = _local(day, end_s, zone)
    if end_s < start_s:
        closes = _local(day + timedelta(days=1), end_s, zone)
    if closes <= opens:
        return []
    return [(opens, closes)]


def merged_open(
    facility: Facility, zone: ZoneInfo, first: date, last: date
) -> list[tuple[datetime, datetime]]:
    """Open intervals opening on local days ``first..last``, overlapping/adjacent ones merged."""
    raw: list[tuple[datetime, datetime]] = []
    d = first
    while d <= last:
        raw.extend(opening_intervals(facility, zone, d))
        d += timedelta(days=1)
    raw.sort()
    merged: list[tuple[datetime, datetime]] = []
    for a, b in raw:
        if merged and a <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(b, merged[-1][1]))
        else:
            merged.append((a, b))
    return merged


def _local(day: date, hhmm: str, zone: ZoneInfo) -> datetime:
    if hhmm == "24:00":
        return _local(day + timedelta(days=1), "00:00", zone)
    return datetime.combine(day, time.fromisoformat(hhmm), tzinfo=zone).astimezone(UTC)


def _local_hour(day: date, hour: float, zone: ZoneInfo) -> datetime:
    minutes = round(hour * 60)
    t = time(minutes // 60, minutes % 60)
    return datetime.combine(day, t, tzinfo=zone).astimezone(UTC)


def _midnight(day: date, zone: ZoneInfo) -> datetime:
    return datetime.combine(day, time(0), tzinfo=zone).astimezone(UTC)


def poisson(rng: random.Random, mean: float) -> int:
    """A Poisson draw (Knuth's method, in chunks of mean <= 30 for numerical safety)."""
    n = 0
    while mean > 0:
        chunk = min(mean, 30.0)
        mean -= chunk
        limit, k, p = math.exp(-chunk), 0, rng.random()
        while p > limit:
            k += 1
            p *= rng.random()
        n += k
    return n


def weighted(rng: random.Random, weights: Mapping[T, float]) -> T:
    """One key of ``weights`` drawn with probability proportional to its weight (keys sorted by
    their string form, so the draw does not depend on the mapping's order)."""
    items = sorted(((k, w) for k, w in weights.items() if w > 0), key=lambda kv: str(kv[0]))
    total = sum(w for _, w in items)
    x = rng.random() * total
    for k, w in items:
        x -= w
        if x < 0:
            return k
    return items[-1][0]


# --- the simulation ---------------------------------------------------------------------------


class _Ev(IntEnum):
    """Internal event kinds; the value orders simultaneous events."""

    DAY = 0
    RELEASE = 1
    TIMEOUT = 2
    CLOSE = 3
    ARRIVAL = 4
    STOCK_COUNT = 5
    DELIVERY = 6
    SHARPS = 7
    SWEEP = 8


@dataclass(frozen=True, slots=True)
class _Out:
    at: datetime
    event: str
    principal: str
    body: dict[str, Any]
    visit_ref: str | None = None
    needs_visit: str | None = None


@dataclass(slots=True)
class _Waiting:
    code: str
    first_visit: bool
    close: datetime
    close_real: bool
    active: bool = True


@dataclass
class _Lane:
    """Common machinery: an internal event heap and an outbox of reports ordered by time."""

    lane: str
    zone: ZoneInfo
    start: datetime
    end: datetime | None
    rng: random.Random
    _events: list[tuple[datetime, int, int, Any]] = field(default_factory=list)
    _outbox: list[tuple[datetime, int, _Out]] = field(default_factory=list)
    _counter: itertools.count[int] = field(default_factory=itertools.count)

    def push(self, at: datetime, kind: _Ev, data: Any = None) -> None:
        heapq.heappush(self._events, (at, int(kind), next(self._counter), data))

    def emit(self, out: _Out) -> None:
        if out.at < self.start or (self.end is not None and out.at >= self.end):
            return
        heapq.heappush(self._outbox, (out.at, next(self._counter), out))

    def iso(self, at: datetime) -> str:
        return at.astimezone(self.zone).isoformat()

    def handle(self, at: datetime, kind: _Ev, data: Any) -> None:
        raise NotImplementedError

    def run(self) -> Iterator[_Out]:
        """Process events in time order; release reports once no later event can precede them."""
        while self._events:
            at = self._events[0][0]
            if self.end is not None and at >= self.end:
                break
            while self._outbox and self._outbox[0][0] < at:
                yield heapq.heappop(self._outbox)[2]
            at, kind, _, data = heapq.heappop(self._events)
            self.handle(at, _Ev(kind), data)
        while self._outbox:
            yield heapq.heappop(self._outbox)[2]


class _FacilitySim(_Lane):
    def __init__(
        self,
        facility: Facility,
        params: SimParams,
        zone: ZoneInfo,
        seed: int,
        start: datetime,
        end: datetime | None,
    ) -> None:
        super().__init__(facility.id, zone, start, end, seeded_rng(seed, "facility", facility.id))
        self.f = facility
        self.p = params
        self.booths = booths_of(facility, params)
        self.base = base_visits_per_day(facility, params)
        self.free: list[int] = list(range(1, self.booths + 1))
        self.queue: deque[_Waiting] = deque()
        self.queue_cap = math.ceil(self.booths * params.queue_per_booth)
        self.population = max(1, round(self.base * params.client_population_factor))
        self.new_clients = 0
        parts = facility.id.split("-")
        self.prefix = ("".join(p[0] for p in parts) if len(parts) > 1 else parts[0][:2]).upper()
        self.visits = 0
        self.par = {
            item: min(10_000, round(per * self.base))
            for item, per in params.stock_par_per_visit.items()
            if round(per * self.base) > 0
        }
        self.stock = dict(self.par)
        self.sharps_pending = 0.0
        self.push(start, _Ev.DAY, start.astimezone(zone).date())

    # -- reports --

    def report(self, at: datetime, event: str, body: dict[str, Any], **kw: Any) -> None:
        full = {"facility_id": self.f.id, "occurred_at": self.iso(at), **body}
        self.emit(_Out(at, event, self.f.id, full, **kw))

    # -- events --

    def handle(self, at: datetime, kind: _Ev, data: Any) -> None:
        if kind is _Ev.DAY:
            self.on_day(at, data)
        elif kind is _Ev.ARRIVAL:
            self.on_arrival(at, *data)
        elif kind is _Ev.RELEASE:
            self.on_release(at, data)
        elif kind is _Ev.TIMEOUT:
            if data.active:
                data.active = False
                self.refuse(at, RefusalReason.CAPACITY, data.code)
        elif kind is _Ev.CLOSE:
            for w in self.queue:
                if w.active:
                    w.active = False
                    self.refuse(at, RefusalReason.CLOSED, w.code)
            self.queue.clear()
            self.on_sharps(at)
        elif kind is _Ev.STOCK_COUNT:
            self.report(at, "stock.counted", {"items": {str(k): v for k, v in self.stock.items()}})
        elif kind is _Ev.DELIVERY:
            self.on_delivery(at)
        elif kind is _Ev.SHARPS:
            self.on_sharps(at)

    def on_day(self, at: datetime, day: date) -> None:
        zone, p = self.zone, self.p
        midnight, next_midnight = _midnight(day, zone), _midnight(day + timedelta(days=1), zone)
        self.push(next_midnight, _Ev.DAY, day + timedelta(days=1))
        merged = merged_open(self.f, zone, day - timedelta(days=1), day + timedelta(days=2))
        edge = _midnight(day + timedelta(days=3), zone)
        segments = [
            (max(a, midnight), min(b, next_midnight), b, b < edge)
            for a, b in merged
            if a < next_midnight and b > midnight
        ]
        for _, b in merged:
            if midnight <= b < next_midnight and b >= at and b < edge:
                self.push(b, _Ev.CLOSE)
        # Arrivals: a non-homogeneous Poisson process over local hour pieces of the open time.
        noise = math.exp(self.rng.gauss(0.0, p.day_noise_sigma) - p.day_noise_sigma**2 / 2)
        target = self.base * day_multiplier(day, p) * noise
        target = min(max(target, p.visits_per_day_min), p.visits_per_day_max)
        pieces = [
            (a, b, close, real, p.hourly_weights[a.astimezone(zone).hour])
            for seg_a, seg_b, close, real in segments
            for a, b in _hour_pieces(seg_a, seg_b, zone)
        ]
        total = sum((b - a).total_seconds() / 3600 * w for a, b, _, _, w in pieces)
        arrivals: list[tuple[datetime, datetime, bool]] = []
        for a, b, close, real, w in pieces if total > 0 else ():
            mean = target * w * (b - a).total_seconds() / 3600 / total
            n = poisson(self.rng, mean)
            span = int((b - a).total_seconds())
            arrivals.extend(
                (a + timedelta(seconds=self.rng.randrange(span)), close, real) for _ in range(n)
            )
        for t, close, real in sorted(arrivals):
            if t >= at:
                self.push(t, _Ev.ARRIVAL, (close, real))
        # The day's chores, at the first open moment from their local hour.
        for kind, hour, today in (
            (_Ev.STOCK_COUNT, p.stock_count_hour, True),
            (_Ev.DELIVERY, p.delivery_hour, _WEEKDAYS[day.weekday()] in p.delivery_weekdays),
        ):
            when = _local_hour(day, hour, zone)
            slot = next((max(a, when) for a, b, _, _ in segments if max(a, when) < b), None)
            if today and slot is not None and slot >= at:
                self.push(slot, kind)
        for h in range(0, 24, p.sharps_every_h):
            when = _local_hour(day, h, zone)
            if when >= at and any(a < when < b for a, b, _, _ in segments):
                self.push(when, _Ev.SHARPS)

    def client(self) -> tuple[str, bool]:
        if self.rng.random() < self.p.first_visit_share:
            self.new_clients += 1
            return f"{self.prefix}-{self.population + self.new_clients:04d}", True
        return f"{self.prefix}-{int(self.population * self.rng.random() ** 2):04d}", False

    def refuse(self, at: datetime, reason: RefusalReason, code: str) -> None:
        self.report(at, "visit.refused", {"reason": str(reason), "client_code": code})

    def on_arrival(self, at: datetime, close: datetime, close_real: bool) -> None:
        p = self.p
        code, first = self.client()
        u = self.rng.random()
        if u < p.refusal_intoxicated_share:
            self.refuse(at, RefusalReason.INTOXICATED, code)
        elif u < p.refusal_intoxicated_share + p.refusal_behaviour_share:
            self.refuse(at, RefusalReason.BEHAVIOUR, code)
        elif self.too_late(at, close, close_real):
            self.refuse(at, RefusalReason.CLOSED, code)
        elif self.free:
            self.admit(at, code, first, close)
        elif sum(w.active for w in self.queue) < self.queue_cap:
            w = _Waiting(code, first, close, close_real)
            self.queue.append(w)
            self.push(at + timedelta(minutes=p.queue_patience_min), _Ev.TIMEOUT, w)
        else:
            self.refuse(at, RefusalReason.CAPACITY, code)

    def too_late(self, at: datetime, close: datetime, close_real: bool) -> bool:
        return close_real and at > close - timedelta(minutes=self.p.last_admission_min)

    def on_release(self, at: datetime, booth: int) -> None:
        heapq.heappush(self.free, booth)
        while self.queue and self.free:
            w = self.queue[0]
            if not w.active:
                self.queue.popleft()
                continue
            if self.too_late(at, w.close, w.close_real):
                break  # refused as closed at closing time
            self.queue.popleft()
            w.active = False
            self.admit(at, w.code, w.first_visit, w.close)

    def admit(self, at: datetime, code: str, first_visit: bool, close: datetime) -> None:
        p, rng = self.p, self.rng
        booth = heapq.heappop(self.free)
        self.visits += 1
        ref = f"{self.f.id}/{self.visits}"
        route: Route = weighted(rng, p.route_weights)
        substances = weighted(rng, {c.substances: c.weight for c in p.substance_mix[route]})
        assisted = route is Route.INJECT and rng.random() < p.assisted_injection_share
        minutes = rng.lognormvariate(math.log(p.visit_median_min), p.visit_sigma)
        minutes = min(max(minutes, p.visit_min_min), p.visit_max_min)
        end = min(at + timedelta(seconds=round(minutes * 60)), close)
        self.report(
            at,
            "visit.started",
            {
                "client_code": code,
                "booth": booth,
                "substances": [str(s) for s in substances],
                "route": str(route),
                "assisted_injection": assisted,
                "first_visit": first_visit,
            },
            visit_ref=ref,
        )
        # An overdose may prolong the visit (observation) or cut it short (ambulance): decide it
        # first, so that everything else in the visit falls within its final [at, end].
        if rng.random() < p.overdoses_per_1000 / 1000:
            end = self.overdose(at, end, close, substances, ref)
        # Before consuming: a drug check, then the equipment for this visit.
        if rng.random() < p.drug_check_share:
            t = _within(at, end, 60)
            drug_checking = {"service": str(OnSiteService.DRUG_CHECKING)}
            self.report(t, "service.given", drug_checking, needs_visit=ref)
            self.report(t, "drugcheck.result", self.drug_check(substances), needs_visit=ref)
        in_booth = self.dispense(p.in_booth_supplies.get(route, ()))
        if in_booth:
            self.sharps_pending += in_booth.get(SupplyItem.NEEDLES, 0)
            items = {"items": _items(in_booth)}
            self.report(_within(at, end, 30), "supplies.dispensed", items, needs_visit=ref)
        if rng.random() < p.other_incidents_per_1000 / 1000:
            self.other_incident(_between(rng, at, end), ref)
        for service, share in sorted(p.service_shares.items(), key=lambda kv: str(kv[0])):
            if service is not OnSiteService.DRUG_CHECKING and rng.random() < share:
                given = {"service": str(service)}
                self.report(_between(rng, at, end), "service.given", given, needs_visit=ref)
        if rng.random() < p.referrals_per_100 / 100:
            kind: ReferralKind = weighted(rng, p.referral_weights)
            referral = {"referral_to": str(kind)}
            self.report(_between(rng, at, end), "referral.made", referral, needs_visit=ref)
        take_away = self.dispense((*p.take_away_supplies.get(route, ()), *p.extra_take_away))
        if take_away:
            self.sharps_pending += take_away.get(SupplyItem.NEEDLES, 0) * p.sharps_return_share
            self.report(
                end,
                "supplies.dispensed",
                {"items": _items(take_away), "secondary_distribution": True},
                needs_visit=ref,
            )
        self.report(end, "visit.ended", {}, needs_visit=ref)
        self.push(end, _Ev.RELEASE, booth)

    def drug_check(self, substances: tuple[Substance, ...]) -> dict[str, Any]:
        expected = substances[0]
        found = [str(expected)]
        if self.rng.random() < self.p.adulterant_share:
            options = {s: w for s, w in self.p.adulterant_weights.items() if s != expected}
            if options and any(options.values()):
                found.append(str(weighted(self.rng, options)))
        return {"expected": str(expected), "found": found}

    def overdose(
        self,
        at: datetime,
        end: datetime,
        close: datetime,
        substances: tuple[Substance, ...],
        ref: str,
    ) -> datetime:
        """Report an overdose during the visit; returns the visit's (possibly new) end."""
        p, rng = self.p, self.rng
        has_o = any(s in OPIOIDS for s in substances)
        has_s = any(s in STIMULANTS for s in substances)
        opioid = (rng.random() < p.opioid_overdose_share) if (has_o and has_s) else not has_s
        kind = IncidentKind.OPIOID_OVERDOSE if opioid else IncidentKind.STIMULANT_OVERAMPING
        group = OPIOIDS if opioid else STIMULANTS
        suspected = next((s for s in substances if s in group), substances[0])
        span = int((end - at).total_seconds())
        od_at = at + timedelta(seconds=int(span * rng.uniform(0.2, 0.8)))
        u = rng.random()
        hospital, ambulance = u < p.hospital_share, u < p.ambulance_share
        life_threatening = u < p.life_threatening_share
        naloxone = opioid and (life_threatening or rng.random() < p.naloxone_share)
        doses = (1 + (rng.random() < 0.3) + (rng.random() < 0.1)) if naloxone else 0
        oxygen = rng.random() < 0.7
        rescue = life_threatening or (naloxone and rng.random() < 0.5)
        cpr = life_threatening and rng.random() < 0.2
        died = life_threatening and rng.random() < p.death_share
        left = rng.random() < p.left_share
        if died:
            outcome = Outcome.DIED
        elif hospital:
            outcome = Outcome.TRANSFERRED_TO_HOSPITAL
        else:
            outcome = Outcome.LEFT if left else Outcome.RECOVERED_ON_SITE
        if died or life_threatening:
            severity = Severity.CRITICAL
        elif naloxone or ambulance:
            severity = Severity.SEVERE
        else:
            severity = Severity.MODERATE
        self.report(
            od_at,
            "incident.reported",
            {
                "kind": str(kind),
                "severity": str(severity),
                "life_threatening": life_threatening,
                "interventions": {
                    "naloxone_doses": doses,
                    "oxygen": oxygen,
                    "rescue_breathing": rescue,
                    "cpr": cpr,
                    "ambulance_called": ambulance,
                },
                "outcome": str(outcome),
                "suspected_substance": str(suspected),
            },
            needs_visit=ref,
        )
        if hospital or died or left:
            return min(od_at + timedelta(minutes=15), close)
        return min(max(end, od_at + timedelta(minutes=30)), close)

    def other_incident(self, at: datetime, ref: str) -> None:
        kind: IncidentKind = weighted(
            self.rng,
            {
                IncidentKind.SEIZURE: 0.3,
                IncidentKind.OTHER_MEDICAL: 0.5,
                IncidentKind.VIOLENCE: 0.2,
            },
        )
        severity = Severity.MODERATE if self.rng.random() < 0.3 else Severity.LOW
        outcome = Outcome.LEFT if kind is IncidentKind.VIOLENCE else Outcome.RECOVERED_ON_SITE
        body = {
            "kind": str(kind),
            "severity": str(severity),
            "life_threatening": False,
            "outcome": str(outcome),
        }
        self.report(at, "incident.reported", body, needs_visit=ref)

    def dispense(self, bundles: Iterable[SupplyBundle]) -> dict[SupplyItem, int]:
        """Draw the bundles handed out; stock limits what is given (untracked items: no limit)."""
        items: dict[SupplyItem, int] = {}
        for bundle in bundles:
            if self.rng.random() < bundle.probability:
                for item, (lo, hi) in bundle.items.items():
                    items[item] = items.get(item, 0) + self.rng.randint(lo, hi)
        for item in list(items):
            if item in self.stock:
                items[item] = min(items[item], self.stock[item])
                self.stock[item] -= items[item]
            if items[item] <= 0:
                del items[item]
        return items

    def on_delivery(self, at: datetime) -> None:
        needed = {
            item: par - self.stock[item]
            for item, par in self.par.items()
            if self.stock[item] < par * self.p.reorder_fraction
        }
        if needed:
            self.stock.update({item: self.par[item] for item in needed})
            self.report(at, "stock.delivered", {"items": _items(needed)})

    def on_sharps(self, at: datetime) -> None:
        count = int(self.sharps_pending)
        if count > 0:
            self.sharps_pending -= count
            weight = round(count * self.p.sharps_grams / 1000, 3)
            self.report(at, "sharps.returned", {"count": count, "weight_kg": weight})


class _DistrictSim(_Lane):
    def __init__(
        self,
        district: str,
        name: str,
        params: SimParams,
        zone: ZoneInfo,
        seed: int,
        start: datetime,
        end: datetime | None,
        principal: str,
    ) -> None:
        super().__init__(
            f"district:{district}",
            zone,
            start,
            end,
            seeded_rng(seed, "district", district),
        )
        self.district = district
        self.p = params
        self.principal = principal
        self.areas = params.street_areas.get(district) or (name,)
        self.mean = params.street_needles_mean.get(district, params.street_needles_default_mean)
        self.push(start, _Ev.DAY, start.astimezone(zone).date())

    def handle(self, at: datetime, kind: _Ev, data: Any) -> None:
        if kind is _Ev.DAY:
            self.on_day(at, data)
        elif kind is _Ev.SWEEP:
            count = poisson(self.rng, self.mean / self.p.street_sweeps_per_day)
            body = {
                "district": self.district,
                "occurred_at": self.iso(at),
                "area": self.rng.choice(self.areas),
                "count": count,
                "weight_kg": round(count * self.p.sharps_grams / 1000, 3),
            }
            self.emit(_Out(at, "street_needles.collected", self.principal, body))

    def on_day(self, at: datetime, day: date) -> None:
        midnight, next_midnight = (
            _midnight(day, self.zone),
            _midnight(day + timedelta(days=1), self.zone),
        )
        self.push(next_midnight, _Ev.DAY, day + timedelta(days=1))
        n = self.p.street_sweeps_per_day
        for k in range(n):
            hour = (self.p.street_sweep_hour + k * 24 / n) % 24
            when = _local_hour(day, hour, self.zone) + timedelta(
                seconds=self.rng.randint(-1800, 1800)
            )
            when = min(max(when, midnight), next_midnight - timedelta(seconds=1))
            if when >= at:
                self.push(when, _Ev.SWEEP)


def _hour_pieces(a: datetime, b: datetime, zone: ZoneInfo) -> Iterator[tuple[datetime, datetime]]:
    """Split ``[a, b)`` at local hour boundaries."""
    while a < b:
        local = a.astimezone(zone)
        boundary = a + timedelta(
            minutes=60 - local.minute, seconds=-local.second, microseconds=-local.microsecond
        )
        yield a, min(b, boundary)
        a = boundary


def _within(at: datetime, end: datetime, seconds: int) -> datetime:
    return min(at + timedelta(seconds=seconds), end)


def _between(rng: random.Random, at: datetime, end: datetime) -> datetime:
    return at + timedelta(seconds=rng.randint(0, max(0, int((end - at).total_seconds()))))


def _items(items: Mapping[SupplyItem, int]) -> dict[str, int]:
    return {str(k): v for k, v in items.items()}


def _floor_s(t: datetime) -> datetime:
    return t.astimezone(UTC).replace(microsecond=0)


def simulate(
    city: City,
    params: SimParams,
    *,
    seed: int,
    start: datetime,
    end: datetime | None = None,
    facilities: Sequence[str] | None = None,
    sanitation_principal: str = SANITATION_PRINCIPAL,
    street: bool = True,
) -> Iterator[IntendedReport]:
    """The reports of ``facilities`` (default: all in ``city``) and the street sweeps of their
    districts (if ``street``), from ``start`` until ``end`` (None: forever, lazily)."""
    start = _floor_s(start)
    end = _floor_s(end) if end is not None else None
    ids = list(facilities) if facilities is not None else [f.id for f in city.facilities]
    unknown = [i for i in ids if i not in city.facility_by_id]
    if unknown:
        raise ValueError(f"unknown facilities: {', '.join(unknown)}")
    lanes: list[_Lane] = [
        _FacilitySim(city.facility_by_id[i], params, city.zone, seed, start, end) for i in ids
    ]
    if street and params.street_sweeps_per_day > 0:
        districts = dict.fromkeys(city.facility_by_id[i].district for i in ids)
        lanes += [
            _DistrictSim(
                d,
                city.district_by_id[d].name,
                params,
                city.zone,
                seed,
                start,
                end,
                sanitation_principal,
            )
            for d in districts
        ]

    def numbered(index: int, lane: _Lane) -> Iterator[tuple[datetime, int, IntendedReport]]:
        for seq, out in enumerate(lane.run()):
            report = IntendedReport(
                out.at,
                lane.lane,
                seq,
                out.event,
                out.principal,
                out.body,
                out.visit_ref,
                out.needs_visit,
            )
            yield out.at, index, report

    streams = [numbered(i, lane) for i, lane in enumerate(lanes)]
    for _, _, report in heapq.merge(*streams, key=lambda x: (x[0], x[1])):
        yield report
