"""Event builders for projection tests (unit and integration)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from services.projection.consumer import Projector
from services.projection.domain import RawRecord
from shared.city import City, load_city
from shared.events import payloads as p
from shared.events.envelope import (
    Envelope,
    district_source,
    facility_source,
    to_headers,
    to_value,
)
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
from shared.settings import REPO_ROOT, KafkaSettings

CITY: City = load_city(REPO_ROOT / "deploy" / "city.yaml")


def offline_projector() -> Projector:
    """A projector of :data:`CITY` for its pure work (preparing batches): no database, no
    dead-letter sink, no consumer."""
    return Projector(
        pool=None,  # type: ignore[arg-type]  # preparing touches no database
        city=CITY,
        group="g",
        kafka=KafkaSettings(),
        deadletters=None,  # type: ignore[arg-type]
    )


def pseudonym(n: int) -> str:
    return f"{n:064x}"


def wrap(
    data: p.Payload,
    at: datetime,
    facility: str | None = "halmtorv",
    district: str | None = None,
    id: uuid.UUID | None = None,
) -> Envelope:
    source = facility_source(facility) if facility else district_source(district or "")
    return Envelope.wrap(data, id=id or uuid.uuid4(), source=source, time=at)


def visit_started(
    visit_id: str,
    at: datetime,
    *,
    facility: str = "halmtorv",
    client: int = 1,
    route: Route = Route.INJECT,
    substances: tuple[Substance, ...] = (Substance.HEROIN,),
    first: bool = False,
    assisted: bool = False,
) -> Envelope:
    return wrap(
        p.VisitStarted(
            visit_id=visit_id,
            client_pseudonym=pseudonym(client),
            substances=substances,
            route=route,
            first_visit=first,
            assisted_injection=assisted,
        ),
        at,
        facility,
    )


def visit_ended(visit_id: str, at: datetime, *, facility: str = "halmtorv") -> Envelope:
    return wrap(p.VisitEnded(visit_id=visit_id), at, facility)


def refused(
    at: datetime, reason: RefusalReason = RefusalReason.CAPACITY, *, facility: str = "halmtorv"
) -> Envelope:
    return wrap(p.VisitRefused(reason=reason), at, facility)


def referral(
    at: datetime, kind: ReferralKind = ReferralKind.HOUSING, *, facility: str = "halmtorv"
) -> Envelope:
    return wrap(p.ReferralMade(referral_to=kind), at, facility)


def service(
    at: datetime, kind: OnSiteService = OnSiteService.WOUND_CARE, *, facility: str = "halmtorv"
) -> Envelope:
    return wrap(p.ServiceGiven(service=kind), at, facility)


def dispensed(
    at: datetime, items: dict[SupplyItem, int], *, facility: str = "halmtorv"
) -> Envelope:
    return wrap(p.SuppliesDispensed(items=items), at, facility)


def delivered(
    at: datetime, items: dict[SupplyItem, int], *, facility: str = "halmtorv"
) -> Envelope:
    return wrap(p.StockDelivered(items=items), at, facility)


def counted(at: datetime, items: dict[SupplyItem, int], *, facility: str = "halmtorv") -> Envelope:
    return wrap(p.StockCounted(items=items), at, facility)


def sharps(
    at: datetime,
    count: int | None = None,
    weight_kg: float | None = None,
    *,
    facility: str = "halmtorv",
) -> Envelope:
    return wrap(p.SharpsReturned(count=count, weight_kg=weight_kg), at, facility)


def street_needles(
    at: datetime,
    district: str = "vesterbro",
    count: int | None = None,
    weight_kg: float | None = None,
) -> Envelope:
    return wrap(
        p.StreetNeedlesCollected(
            district=district, area="Skelbækgade", count=count, weight_kg=weight_kg
        ),
        at,
        None,
        district,
    )


def incident(
    at: datetime,
    kind: IncidentKind = IncidentKind.OPIOID_OVERDOSE,
    *,
    outcome: Outcome = Outcome.RECOVERED_ON_SITE,
    life_threatening: bool = True,
    naloxone: int = 0,
    ambulance: bool = False,
    facility: str = "halmtorv",
) -> Envelope:
    return wrap(
        p.IncidentReported(
            incident_id=uuid.uuid4().hex,
            kind=kind,
            severity=Severity.SEVERE,
            life_threatening=life_threatening,
            outcome=outcome,
            interventions=p.Interventions(naloxone_doses=naloxone, ambulance_called=ambulance),
        ),
        at,
        facility,
    )


def drug_check(
    at: datetime, expected: Substance, found: tuple[Substance, ...], *, facility: str = "halmtorv"
) -> Envelope:
    return wrap(p.DrugCheckResult(expected=expected, found=found), at, facility)


def alert(
    at: datetime, episode: str, district: str = "vesterbro", *, alert_id: str | None = None
) -> Envelope:
    return wrap(
        p.DrugAlertRaised(
            alert_id=alert_id or uuid.uuid4().hex,
            district=district,
            reason=AlertReason.OVERDOSE_CLUSTER,
            episode=episode,
            substance=Substance.FENTANYL,
        ),
        at,
        None,
        district,
    )


def record(
    env: Envelope,
    offset: int = 0,
    *,
    partition: int = 0,
    topic: str | None = None,
    **overrides: Any,
) -> RawRecord:
    headers = tuple((k, v.encode()) for k, v in to_headers(env).items())
    fields: dict[str, Any] = dict(
        topic=topic or env.topic,
        partition=partition,
        offset=offset,
        timestamp_ms=0,
        key=env.key.encode(),
        value=to_value(env),
        headers=headers,
    )
    fields.update(overrides)
    return RawRecord(**fields)


def random_stream(seed: int, n: int, base: datetime, days: int = 2) -> list[Envelope]:
    """A realistic mixed stream of about ``n`` events over ``days`` days before ``base``:
    visits (some ends before their starts, some never ended), refusals, referrals, services,
    supplies, stock, sharps, street needles, incidents, drug checks, alerts; about 5 % of the
    events appear twice (same id, as an ingest retry would publish them)."""
    import random
    from datetime import timedelta

    rng = random.Random(seed)
    facilities = [fac.id for fac in CITY.facilities]
    out: list[Envelope] = []
    span = days * 24 * 60

    def at() -> datetime:
        return base - timedelta(minutes=rng.randint(1, span))

    while len(out) < n:
        fac = rng.choice(facilities)
        roll = rng.random()
        t = at()
        if roll < 0.45:
            vid = uuid.uuid4().hex
            start = visit_started(
                vid,
                t,
                facility=fac,
                client=rng.randint(1, 60),
                route=rng.choice(list(Route)),
                substances=tuple(rng.sample(list(Substance), rng.randint(1, 3))),
                first=rng.random() < 0.1,
                assisted=rng.random() < 0.2,
            )
            end = visit_ended(vid, t + timedelta(minutes=rng.randint(5, 60)), facility=fac)
            r = rng.random()
            out += [start, end] if r < 0.6 else [end, start] if r < 0.8 else [start]
        elif roll < 0.55:
            out.append(refused(t, rng.choice(list(RefusalReason)), facility=fac))
        elif roll < 0.6:
            out.append(referral(t, rng.choice(list(ReferralKind)), facility=fac))
        elif roll < 0.65:
            out.append(service(t, rng.choice(list(OnSiteService)), facility=fac))
        elif roll < 0.72:
            items = rng.sample(list(SupplyItem), rng.randint(1, 3))
            out.append(dispensed(t, {i: rng.randint(1, 30) for i in items}, facility=fac))
        elif roll < 0.75:
            out.append(delivered(t, {SupplyItem.SYRINGES: 500, SupplyItem.FOIL: 200}, facility=fac))
        elif roll < 0.77:
            out.append(counted(t, {SupplyItem.SYRINGES: rng.randint(0, 900)}, facility=fac))
        elif roll < 0.81:
            out.append(
                sharps(
                    t,
                    count=rng.randint(0, 50),
                    weight_kg=rng.choice([None, 0.25, 1.1]),
                    facility=fac,
                )
            )
        elif roll < 0.84:
            out.append(
                street_needles(
                    t,
                    rng.choice([d.id for d in CITY.districts]),
                    count=rng.randint(1, 20),
                    weight_kg=0.05,
                )
            )
        elif roll < 0.93:
            out.append(
                incident(
                    t,
                    rng.choice(list(IncidentKind)),
                    outcome=rng.choice(list(Outcome)),
                    life_threatening=rng.random() < 0.4,
                    naloxone=rng.randint(0, 3),
                    ambulance=rng.random() < 0.2,
                    facility=fac,
                )
            )
        elif roll < 0.98:
            out.append(
                drug_check(
                    t,
                    Substance.HEROIN,
                    rng.choice([(Substance.HEROIN,), (Substance.HEROIN, Substance.FENTANYL)]),
                    facility=fac,
                )
            )
        else:
            district = rng.choice([d.id for d in CITY.districts])
            # episodes are per district (one partition), as the incident service makes them
            out.append(alert(t, f"{district}/episode-{rng.randint(1, 3)}", district))
        if rng.random() < 0.05:
            out.append(out[-1])  # an ingest retry: the same event again
    return out
