"""The pure projection logic: days, decoding/validation, dedup, changes, batch independence."""

from __future__ import annotations

import random
import uuid
from collections import Counter
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest

from services.projection import domain
from shared.events import payloads as p
from shared.events.fast_decode import event_of
from shared.events.vocabulary import (
    AlertReason,
    IncidentKind,
    Outcome,
    RefusalReason,
    Route,
    Substance,
    SupplyItem,
)
from tests.unit.projection import factory as f

CITY = f.CITY
T = datetime(2026, 11, 27, 10, 0, tzinfo=UTC)


# --- days -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("instant", "expected"),
    [
        # winter (CET, +1): 23:30 UTC is already the next day
        (datetime(2026, 1, 14, 23, 30, tzinfo=UTC), date(2026, 1, 15)),
        (datetime(2026, 1, 14, 22, 59, tzinfo=UTC), date(2026, 1, 14)),
        # summer (CEST, +2): 22:30 UTC is the next day
        (datetime(2026, 7, 1, 22, 30, tzinfo=UTC), date(2026, 7, 2)),
        (datetime(2026, 7, 1, 21, 59, tzinfo=UTC), date(2026, 7, 1)),
        # spring forward, 2026-03-29 02:00 local: 00:30 UTC is 01:30 CET, 01:30 UTC is 03:30 CEST
        (datetime(2026, 3, 28, 23, 30, tzinfo=UTC), date(2026, 3, 29)),
        (datetime(2026, 3, 28, 22, 59, tzinfo=UTC), date(2026, 3, 28)),
        (datetime(2026, 3, 29, 21, 59, tzinfo=UTC), date(2026, 3, 29)),  # 23:59 CEST
        (datetime(2026, 3, 29, 22, 0, tzinfo=UTC), date(2026, 3, 30)),
        # fall back, 2026-10-25 03:00 CEST -> 02:00 CET: that day has 25 hours
        (datetime(2026, 10, 24, 22, 0, tzinfo=UTC), date(2026, 10, 25)),  # 00:00 CEST
        (datetime(2026, 10, 25, 22, 59, tzinfo=UTC), date(2026, 10, 25)),  # 23:59 CET
        (datetime(2026, 10, 25, 23, 0, tzinfo=UTC), date(2026, 10, 26)),
    ],
)
def test_local_day_is_dst_correct(instant: datetime, expected: date) -> None:
    assert domain.local_day(instant, CITY.zone) == expected


def test_event_day_follows_the_city_zone_not_the_reported_offset() -> None:
    late_evening = datetime(2026, 7, 1, 23, 30, tzinfo=UTC)  # 01:30 on 2 July in Copenhagen
    ch = domain.project([f.refused(late_evening)], CITY)
    assert set(ch.daily) == {("vesterbro", date(2026, 7, 2))}


# --- decoding and references ------------------------------------------------------------------


def test_valid_records_decode_and_keep_their_record() -> None:
    env = f.refused(T)
    decoded, rejected = domain.decode_batch([f.record(env, 7)], CITY)
    assert rejected == []
    assert decoded[0].event == event_of(env) and decoded[0].record.offset == 7


@pytest.mark.parametrize(
    ("overrides", "reason_part"),
    [
        ({"value": b"{not json"}, "not valid JSON"),
        ({"value": None}, "no value"),
        ({"headers": (("ce_id", b"x"),)}, "missing CloudEvents header"),
        (
            {
                "headers": (
                    ("ce_specversion", b"1.0"),
                    ("ce_id", b"x"),
                    ("ce_type", b"nope"),
                    ("ce_source", b"/facilities/halmtorv"),
                    ("ce_time", b"2026-01-01"),
                )
            },
            "unknown ce_type",
        ),
        ({"value": b'{"reason": "bored"}'}, "payload invalid"),
    ],
)
def test_undecodable_records_are_rejected_with_a_reason(
    overrides: dict[str, object], reason_part: str
) -> None:
    rec = f.record(f.refused(T), 3, **overrides)
    decoded, rejected = domain.decode_batch([rec], CITY)
    assert decoded == []
    assert reason_part in rejected[0].reason
    assert rejected[0].record is rec


@pytest.mark.parametrize(
    ("env", "reason"),
    [
        (f.refused(T, facility="atlantis"), "unknown facility in source"),
        (f.street_needles(T, district="atlantis", count=1), "unknown district in source"),
        (f.alert(T, "e1", district="atlantis"), "unknown district in source"),
        (
            f.wrap(f.p.VisitRefused(reason=RefusalReason.OTHER), T, None, "vesterbro"),
            "requires a /facilities/<id> source",
        ),
    ],
)
def test_unknown_places_are_rejected(env: f.Envelope, reason: str) -> None:
    decoded, rejected = domain.decode_batch([f.record(env)], CITY)
    assert decoded == [] and rejected[0].reason.endswith(reason)


def test_street_collection_must_name_its_source_district() -> None:
    data = f.p.StreetNeedlesCollected(district="amager", area="x", count=1)
    env = f.wrap(data, T, None, "vesterbro")
    assert domain.check_references(env, CITY) == "source district differs from payload district"


def test_first_occurrence_wins_among_duplicates() -> None:
    env = f.refused(T)
    twin = f.refused(T + timedelta(minutes=1), RefusalReason.OTHER)
    same_id = f.wrap(twin.data, twin.time, id=env.id)
    decoded, _ = domain.decode_batch(
        [f.record(env, 0), f.record(same_id, 1), f.record(twin, 2)], CITY
    )
    kept = domain.first_occurrences(decoded)
    assert [d.record.offset for d in kept] == [0, 2]


# --- changes ----------------------------------------------------------------------------------


def test_visits_become_facts_not_counters() -> None:
    ch = domain.project(
        [
            f.visit_started(
                "v1",
                T,
                client=1,
                route=Route.SMOKE,
                substances=(Substance.CRACK, Substance.COCAINE, Substance.CRACK),
            ),
            f.visit_started("v1", T + timedelta(minutes=1), client=2),  # second start: first wins
            f.visit_ended("v1", T + timedelta(minutes=30)),
            f.visit_ended("v1", T + timedelta(minutes=20)),  # earliest end wins
        ],
        CITY,
    )
    start = ch.visit_starts[("halmtorv", "v1")]
    assert start.client_pseudonym == f.pseudonym(1)
    assert start.route == "smoke" and start.substances == ("cocaine", "crack")
    assert start.district == "vesterbro" and start.day == date(2026, 11, 27)
    assert ch.visit_ends[("halmtorv", "v1")].end_time == T + timedelta(minutes=20)
    assert ch.daily == {} and not ch.breakdown
    assert ch.applied_types["dk.dcr.visit.started"] == 2


def test_an_end_before_its_start_is_kept_for_later() -> None:
    ch = domain.project([f.visit_ended("v9", T, facility="nordvest")], CITY)
    end = ch.visit_ends[("nordvest", "v9")]
    assert end.district == "nordvest" and not ch.visit_starts


def test_refusals_referrals_services() -> None:
    ch = domain.project(
        [
            f.refused(T, RefusalReason.CAPACITY),
            f.refused(T, RefusalReason.CAPACITY),
            f.refused(T, RefusalReason.INTOXICATED, facility="amager"),
            f.referral(T),
            f.service(T),
        ],
        CITY,
    )
    day = date(2026, 11, 27)
    assert ch.daily[("vesterbro", day)] == {"refusals": 2, "referrals": 1, "services": 1}
    assert ch.daily[("amager", day)] == {"refusals": 1}
    assert ch.breakdown[("vesterbro", day, "refusal_reason", "capacity")] == 2
    assert ch.breakdown[("vesterbro", day, "referral", "housing")] == 1
    assert ch.breakdown[("vesterbro", day, "service", "wound_care")] == 1
    assert ch.facility_daily[("halmtorv", day)]["refusals"] == 2
    assert ch.districts == {"vesterbro", "amager"}


def test_incidents() -> None:
    ch = domain.project(
        [
            f.incident(
                T,
                IncidentKind.OPIOID_OVERDOSE,
                naloxone=2,
                ambulance=True,
                outcome=Outcome.TRANSFERRED_TO_HOSPITAL,
            ),
            f.incident(T, IncidentKind.STIMULANT_OVERAMPING, outcome=Outcome.DIED),
            f.incident(T, IncidentKind.VIOLENCE, life_threatening=False),
        ],
        CITY,
    )
    row = ch.daily[("vesterbro", date(2026, 11, 27))]
    assert row == {
        "incidents": 3,
        "overdoses": 2,
        "life_threatening": 2,
        "naloxone_doses": 2,
        "ambulance_calls": 1,
        "hospital_transfers": 1,
        "deaths": 1,
    }
    kinds = {k[3]: n for k, n in ch.breakdown.items() if k[2] == "incident_kind"}
    assert kinds == {"opioid_overdose": 1, "stimulant_overamping": 1, "violence": 1}
    assert ch.facility_daily[("halmtorv", date(2026, 11, 27))] == Counter(incidents=3, overdoses=2)


def test_drug_checks_count_unexpected_findings() -> None:
    ch = domain.project(
        [
            f.drug_check(T, Substance.HEROIN, (Substance.HEROIN, Substance.FENTANYL)),
            f.drug_check(T, Substance.HEROIN, (Substance.HEROIN, Substance.UNKNOWN)),
        ],
        CITY,
    )
    row = ch.daily[("vesterbro", date(2026, 11, 27))]
    assert row["drug_checks"] == 2 and row["drug_checks_unexpected"] == 1


def test_weights_are_exact_decimals() -> None:
    ch = domain.project(
        [
            f.sharps(T, weight_kg=0.1),
            f.sharps(T, weight_kg=0.2, count=3),
            f.street_needles(T, weight_kg=0.7),
        ],
        CITY,
    )
    row = ch.daily[("vesterbro", date(2026, 11, 27))]
    assert row["sharps_returned_kg"] == Decimal("0.3")  # not 0.30000000000000004
    assert row["sharps_returned_count"] == 3
    assert row["street_needles_kg"] == Decimal("0.7")


def test_supplies_move_stock_and_count_per_item() -> None:
    ch = domain.project(
        [
            f.delivered(T, {SupplyItem.SYRINGES: 100}),
            f.dispensed(T + timedelta(hours=1), {SupplyItem.SYRINGES: 10, SupplyItem.SWABS: 5}),
        ],
        CITY,
    )
    assert [(m.item, m.delta) for m in ch.stock_movements] == [
        ("syringes", 100),
        ("swabs", -5),
        ("syringes", -10),
    ]
    day = ("vesterbro", date(2026, 11, 27))
    assert ch.daily[day] == {"supplies_dispensed": 15}
    assert ch.breakdown[(*day, "supply_item", "syringes")] == 10


def test_the_latest_stock_count_wins_and_ties_keep_the_first() -> None:
    ch = domain.project(
        [
            f.counted(T + timedelta(hours=2), {SupplyItem.FOIL: 5}),
            f.counted(T, {SupplyItem.FOIL: 9}),  # older: ignored
            f.counted(T + timedelta(hours=2), {SupplyItem.FOIL: 7}),  # same time: first kept
        ],
        CITY,
    )
    assert ch.stock_counts[("halmtorv", "foil")].quantity == 5


def test_alerts_once_per_episode_and_id() -> None:
    a1 = f.alert(T, "ep-1", alert_id="a1")
    ch = domain.project(
        [
            a1,
            f.alert(T, "ep-1", alert_id="a2"),
            f.alert(T, "ep-2", alert_id="a1"),
            f.alert(T, "ep-3", "amager"),
        ],
        CITY,
    )
    assert [(a.alert_id, a.episode) for a in ch.alerts][:1] == [("a1", "ep-1")]
    assert [a.episode for a in ch.alerts] == ["ep-1", "ep-3"]
    assert ch.facility_last_event == {}


def test_alert_lifecycle_events_are_accepted_and_the_first_of_each_kind_wins() -> None:
    ack = f.wrap(
        p.DrugAlertAcknowledged(
            alert_id="a1", district="vesterbro", acknowledged_by="ops-oncall",
            seconds_to_acknowledge=120.0,
        ),
        T + timedelta(minutes=2), None, "vesterbro",
    )  # fmt: skip
    resolved = [
        f.wrap(
            p.DrugAlertResolved(
                alert_id="a1",
                district="vesterbro",
                reason=AlertReason.OVERDOSE_CLUSTER,
                episode="ep-1",
                last_seen=T,
                quiet_period_s=7200,
            ),
            at,
            None,
            "vesterbro",
        )
        for at in (T + timedelta(hours=2), T + timedelta(hours=3))
    ]
    events = [f.alert(T, "ep-1", alert_id="a1"), ack, *resolved]
    assert all(domain.check_references(e, CITY) is None for e in events)
    ch = domain.project(events, CITY)
    assert [(a.alert_id, a.by, a.seconds) for a in ch.alert_acks] == [("a1", "ops-oncall", 120.0)]
    assert ch.alert_resolutions == {"a1": T + timedelta(hours=2)}
    assert ch.districts == {"vesterbro"}


def test_last_event_time_is_the_greatest() -> None:
    ch = domain.project([f.refused(T + timedelta(hours=1)), f.refused(T)], CITY)
    assert ch.facility_last_event == {"halmtorv": T + timedelta(hours=1)}


# --- batch independence ----------------------------------------------------------------------


def _random_stream(rng: random.Random, n: int) -> list[f.Envelope]:
    makers = [
        lambda t: f.refused(
            t, rng.choice(list(RefusalReason)), facility=rng.choice(["halmtorv", "amager"])
        ),
        lambda t: f.referral(t),
        lambda t: f.service(t),
        lambda t: f.sharps(t, count=rng.randint(0, 9), weight_kg=rng.choice([None, 0.1, 0.35])),
        lambda t: f.street_needles(
            t, rng.choice(["vesterbro", "sydhavn"]), count=2, weight_kg=0.05
        ),
        lambda t: f.incident(t, rng.choice(list(IncidentKind)), naloxone=rng.randint(0, 3)),
        lambda t: f.dispensed(t, {SupplyItem.SYRINGES: rng.randint(1, 20)}),
    ]
    start = datetime(2026, 10, 24, 20, 0, tzinfo=UTC)  # spans the DST change
    return [rng.choice(makers)(start + timedelta(minutes=rng.randint(0, 3000))) for _ in range(n)]


def _merge(parts: list[domain.Changes]) -> tuple[dict[object, object], Counter[object]]:
    daily: dict[object, dict[str, object]] = {}
    breakdown: Counter[object] = Counter()
    for ch in parts:
        for k, row in ch.daily.items():
            acc = daily.setdefault(k, {})
            for c, v in row.items():
                acc[c] = acc.get(c, 0) + v  # type: ignore[operator]
        breakdown.update(ch.breakdown)
    return dict(daily), breakdown


@pytest.mark.parametrize("seed", range(5))
def test_sums_do_not_depend_on_batch_boundaries(seed: int) -> None:
    rng = random.Random(seed)
    events = _random_stream(rng, 300)
    whole = domain.project(events, CITY)
    cuts = sorted(rng.sample(range(1, len(events)), 7))
    parts = [
        domain.project(events[a:b], CITY)
        for a, b in zip([0, *cuts], [*cuts, len(events)], strict=True)
    ]
    daily, breakdown = _merge(parts)
    assert daily == whole.daily
    assert +breakdown == +whole.breakdown


def test_project_never_mentions_pseudonyms_outside_visit_facts() -> None:
    ch = domain.project([f.visit_started(uuid.uuid4().hex, T, client=42)], CITY)
    text = repr((ch.daily, ch.breakdown, ch.facility_daily, ch.alerts, ch.applied_types))
    assert f.pseudonym(42) not in text
