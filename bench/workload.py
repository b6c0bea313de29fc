"""A realistic event log for the catch-up benchmarks, encoded exactly as the ingest services do.

:class:`EventLog` yields envelopes in time order (as the platform receives them) over ``days``
days ending now, across every facility of the city: visits (a start and, 5 minutes to an hour
later, its end; 5 % never end, 1 % report the end before the start), refusals, referrals,
on-site services, supplies dispensed, deliveries, stock counts, sharps returns, street needle
sweeps (district sources), incidents, drug checks and the odd drug alert. About 1 % of the events
are published twice (same CloudEvents id: an ingest retry), which the projection must count once.

Each envelope is built with the real contracts (``Envelope.wrap`` validates the payload) and
encoded with :func:`shared.events.envelope.to_value` / ``to_headers``.
"""

from __future__ import annotations

import heapq
import random
import uuid
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from shared.city import City
from shared.events import payloads as p
from shared.events.envelope import Envelope, district_source, facility_source, to_headers, to_value
from shared.events.vocabulary import (
    AlertReason,
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

#: Cumulative shares of what happens next (the rest are visits).
_MIX: tuple[tuple[float, str], ...] = (
    (0.05, "refused"),
    (0.08, "referral"),
    (0.13, "service"),
    (0.30, "dispensed"),
    (0.305, "delivered"),
    (0.31, "counted"),
    (0.34, "sharps"),
    (0.345, "street"),
    (0.37, "incident"),
    (0.39, "drug_check"),
    (0.3905, "alert"),
)
_DUPLICATE_SHARE = 0.01
_CLIENTS_PER_FACILITY = 400

Encoded = tuple[str, bytes, bytes, list[tuple[str, bytes]]]


def encode(env: Envelope) -> Encoded:
    """(logical topic, key, value, headers) of the Kafka record the ingest services publish."""
    headers = [(k, v.encode()) for k, v in to_headers(env).items()]
    return env.topic, env.key.encode(), to_value(env), headers


@dataclass
class EventLog:
    """About ``n`` events (exactly ``n`` records) over ``days`` days before ``end``."""

    city: City
    n: int
    days: float = 30.0
    seed: int = 1
    end: datetime | None = None
    #: Where a duplicate (1 % of the records) repeats from: 0, the record just before (a
    #: retry); N > 0, the record N before (a resend after a delay: 700 records are ~30 minutes
    #: of the default 1M-event, 30-day log, enough to cross a catch-up batch's boundary now and
    #: then).
    resend_after: int = 0
    #: Records that repeat an earlier event's id (filled while iterating).
    duplicates: int = 0

    @property
    def unique(self) -> int:
        """Distinct events (valid after a full iteration)."""
        return self.n - self.duplicates

    def __iter__(self) -> Iterator[Envelope]:
        rng = random.Random(self.seed)  # noqa: S311 - a workload, not a secret
        end = self.end or datetime.now(UTC)
        start = end - timedelta(days=self.days)
        facilities = [f.id for f in self.city.facilities]
        districts = [d.id for d in self.city.districts]
        # one activity yields ~1.35 records on average (visits yield two)
        gap_s = self.days * 86_400 / max(self.n / 1.35, 1)
        pending: list[tuple[datetime, int, Envelope]] = []  # later events (visit ends)
        seq = 0
        emitted = 0
        t = start
        recent: deque[Envelope] = deque(maxlen=max(self.resend_after, 1))  # originals emitted last
        self.duplicates = 0
        while emitted < self.n:
            t += timedelta(seconds=rng.expovariate(1 / gap_s))
            while pending and pending[0][0] <= t and emitted < self.n:
                env = heapq.heappop(pending)[2]
                yield env
                emitted += 1
                recent.append(env)
            if emitted >= self.n:
                break
            if recent and rng.random() < _DUPLICATE_SHARE:
                yield recent[0]  # ``resend_after`` back, or fewer at the log's start
                emitted += 1
                self.duplicates += 1
                continue
            fac = rng.choice(facilities)
            roll = rng.random()
            kind = next((k for share, k in _MIX if roll < share), "visit")
            if kind == "visit":
                vid = uuid.UUID(int=rng.getrandbits(128)).hex
                started = self._visit_started(rng, fac, vid, t)
                end_at = t + timedelta(minutes=rng.uniform(5, 60))
                ended = _wrap(rng, p.VisitEnded(visit_id=vid), fac, end_at)
                r = rng.random()
                if r < 0.01:  # the end reported before the start
                    first, second = ended, started
                else:
                    first, second = started, ended
                yield first
                emitted += 1
                recent.append(first)
                if r < 0.95:
                    seq += 1
                    heapq.heappush(pending, (end_at, seq, second))
                continue
            env = self._other(rng, kind, fac, districts, t)
            yield env
            emitted += 1
            recent.append(env)

    def _visit_started(self, rng: random.Random, fac: str, vid: str, t: datetime) -> Envelope:
        route = Route.INJECT if rng.random() < 0.6 else Route.SMOKE
        subs = (
            rng.choice(
                [(Substance.HEROIN,), (Substance.COCAINE,), (Substance.HEROIN, Substance.COCAINE)]
            )
            if route is Route.INJECT
            else rng.choice([(Substance.CRACK,), (Substance.HEROIN,)])
        )
        return _wrap(
            rng,
            p.VisitStarted(
                visit_id=vid,
                client_pseudonym=_pseudonym(fac, rng.randrange(_CLIENTS_PER_FACILITY)),
                booth=rng.randint(1, 12),
                substances=subs,
                route=route,
                assisted_injection=rng.random() < 0.03,
                first_visit=rng.random() < 0.02,
            ),
            fac,
            t,
        )

    def _other(
        self, rng: random.Random, kind: str, fac: str, districts: list[str], t: datetime
    ) -> Envelope:
        data: p.Payload
        if kind == "refused":
            data = p.VisitRefused(reason=rng.choice(list(RefusalReason)))
        elif kind == "referral":
            data = p.ReferralMade(referral_to=rng.choice(list(ReferralKind)))
        elif kind == "service":
            data = p.ServiceGiven(service=rng.choice(list(OnSiteService)))
        elif kind == "dispensed":
            items = rng.sample([SupplyItem.SYRINGES, SupplyItem.NEEDLES, SupplyItem.FOIL], 2)
            data = p.SuppliesDispensed(items={i: rng.randint(1, 10) for i in items})
        elif kind == "delivered":
            data = p.StockDelivered(items={SupplyItem.SYRINGES: 500, SupplyItem.FOIL: 200})
        elif kind == "counted":
            data = p.StockCounted(items={SupplyItem.SYRINGES: rng.randint(0, 900)})
        elif kind == "sharps":
            data = p.SharpsReturned(count=rng.randint(1, 50), weight_kg=rng.choice([None, 0.25]))
        elif kind == "street":
            district = rng.choice(districts)
            street = p.StreetNeedlesCollected(
                district=district, area="Skelbækgade", count=rng.randint(1, 20), weight_kg=0.05
            )
            return _wrap(rng, street, None, t, district)
        elif kind == "incident":
            data = p.IncidentReported(
                incident_id=uuid.UUID(int=rng.getrandbits(128)).hex,
                kind=rng.choice(list(IncidentKind)),
                severity=rng.choice(list(Severity)),
                life_threatening=rng.random() < 0.05,
                outcome=rng.choice(list(Outcome)),
                interventions=p.Interventions(naloxone_doses=rng.randint(0, 2)),
            )
        elif kind == "drug_check":
            data = p.DrugCheckResult(
                expected=Substance.HEROIN,
                found=rng.choice([(Substance.HEROIN,), (Substance.HEROIN, Substance.FENTANYL)]),
            )
        else:
            district = rng.choice(districts)
            alert = p.DrugAlertRaised(
                alert_id=uuid.UUID(int=rng.getrandbits(128)).hex,
                district=district,
                reason=AlertReason.OVERDOSE_CLUSTER,
                episode=f"{district}/{uuid.UUID(int=rng.getrandbits(128)).hex}",
                substance=Substance.FENTANYL,
            )
            return _wrap(rng, alert, None, t, district)
        return _wrap(rng, data, fac, t)


def _wrap(
    rng: random.Random, data: p.Payload, fac: str | None, t: datetime, district: str = ""
) -> Envelope:
    source = facility_source(fac) if fac is not None else district_source(district)
    return Envelope.wrap(
        data, id=uuid.UUID(int=rng.getrandbits(128), version=4), source=source, time=t
    )


def _pseudonym(fac: str, n: int) -> str:
    return uuid.uuid5(uuid.NAMESPACE_URL, f"{fac}/{n}").hex * 2
