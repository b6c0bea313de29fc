"""The council's scenario as events, relative to an injected "now" (valid on any day and hour):
four weeks ending yesterday (local days), the room opening in the middle of them, 200+ needles a
day, 10 emergencies of which 6 life-threatening (all survived), and street needle collections
that drop by 0.5 kg/day from the opening day on. Events are at fixed local times of day
(07:00-17:00), which exist on every day, DST changes included."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from shared.events import payloads as p
from shared.events.envelope import Envelope
from shared.events.vocabulary import (
    IncidentKind,
    Outcome,
    ReferralKind,
    Substance,
    SupplyItem,
)
from tests.unit.projection import factory as f

DAYS = 28
PEOPLE = 12
ROOM = "halmtorv"


@dataclass(frozen=True)
class Scenario:
    first: date
    last: date
    opened: date
    events: list[Envelope]


def build(now: datetime, zone: ZoneInfo) -> Scenario:
    today = now.astimezone(zone).date()
    first = today - timedelta(days=DAYS)
    opened = first + timedelta(days=DAYS // 2)
    events: list[Envelope] = []

    def at(day: date, hour: int, minute: int = 0) -> datetime:
        return datetime.combine(day, time(hour, minute), zone)

    seen: set[int] = set()
    for i in range(DAYS):
        day = first + timedelta(days=i)
        for k in range(PEOPLE):  # each person on every third day: 112 visits, 12 people
            if (i + k) % 3:
                continue
            vid = f"v{i}-{k}"
            events.append(
                f.visit_started(
                    vid, at(day, 9, k), client=k + 1, first=k < 5 and k not in seen, facility=ROOM
                )
            )
            events.append(f.visit_ended(vid, at(day, 9, 30 + k), facility=ROOM))
            seen.add(k)
        for hour in (10, 13, 16):  # 3 x 70 = 210 needles a day
            events.append(
                f.dispensed(at(day, hour), {SupplyItem.NEEDLES: 70, SupplyItem.SYRINGES: 20})
            )
        events.append(f.sharps(at(day, 17), count=200))
        after = day >= opened
        halm = (0.9 if i % 2 == 0 else 0.7) if after else (1.3 if i % 2 == 0 else 1.1)
        other = 0.7 if after else 0.8  # before: 2.1 / 1.9 (mean 2.0); after 1.6 / 1.4 (1.5)
        events.append(_street(at(day, 7), "Halmtorvet", halm))
        events.append(_street(at(day, 7, 30), "Skelbækgade", other))
    for n in range(10):
        day = first + timedelta(days=2 + n)
        if n < 6:
            events.append(
                f.incident(at(day, 14), life_threatening=True, naloxone=2, ambulance=n < 2)
            )
        elif n < 8:
            events.append(f.incident(at(day, 14), IncidentKind.SEIZURE, life_threatening=False))
        else:
            events.append(
                f.incident(
                    at(day, 14),
                    IncidentKind.OTHER_MEDICAL,
                    life_threatening=False,
                    ambulance=True,
                    outcome=Outcome.TRANSFERRED_TO_HOSPITAL,
                )
            )
    kinds = [ReferralKind.ADDICTION_TREATMENT] * 3 + [ReferralKind.HOUSING] * 2
    kinds += [ReferralKind.MEDICAL_CARE, ReferralKind.MENTAL_HEALTH]
    for n, kind in enumerate(kinds):  # all on one day (tests anchor calendar periods on it)
        events.append(f.referral(at(referral_day(first), 11, n), kind))
    for n in range(4):
        found = (Substance.HEROIN, Substance.FENTANYL) if n == 0 else (Substance.HEROIN,)
        events.append(f.drug_check(at(first + timedelta(days=n + 3), 12), Substance.HEROIN, found))
    events.append(f.alert(at(first + timedelta(days=20), 15), "scenario-episode"))
    return Scenario(first, today - timedelta(days=1), opened, events)


def referral_day(first: date) -> date:
    return first + timedelta(days=4)


def _street(when: datetime, area: str, kg: float) -> Envelope:
    data = p.StreetNeedlesCollected(district="vesterbro", area=area, count=None, weight_kg=kg)
    return f.wrap(data, when, None, "vesterbro", id=uuid.uuid4())
