"""Projection rules that a one-line slip would break silently: what counts as a duplicate, which
alerts are accepted, what is rejected and why (found by mutation testing, docs/mutation-report.md).
"""

from __future__ import annotations

import uuid
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


def _alert(facility_id: str | None, district: str = "vesterbro") -> f.Envelope:
    return f.wrap(
        p.DrugAlertRaised(
            alert_id=uuid.uuid4().hex,
            district=district,
            reason=AlertReason.ADULTERANT_FOUND,
            episode=f"adulterant_found/{district}/fentanyl/2026-11-27",
            substance=Substance.FENTANYL,
            facility_id=facility_id,
        ),
        T,
        None,
        district,
    )


def test_an_alert_naming_a_known_facility_or_none_is_applied() -> None:
    for facility in ("halmtorv", None):
        decoded, rejected = domain.decode_batch([f.record(_alert(facility))], CITY)
        assert rejected == [] and len(decoded) == 1
        ch = domain.project_decoded(decoded, CITY)
        assert [a.facility_id for a in ch.alerts] == [facility]


def test_an_alert_naming_an_unknown_facility_is_dead_lettered() -> None:
    rec = f.record(_alert("atlantis"))
    decoded, rejected = domain.decode_batch([rec], CITY)
    assert decoded == [] and rejected[0].reason == "unknown facility in payload"
    assert rejected[0].record is rec


def test_an_alert_for_an_unknown_payload_district_is_dead_lettered() -> None:
    env = _alert(None)
    bad = f.wrap(env.data.model_copy(update={"district": "atlantis"}), T, None, "vesterbro")
    decoded, rejected = domain.decode_batch([f.record(bad)], CITY)
    assert decoded == [] and rejected[0].reason == "unknown district in payload"


_FOLLOW_UPS: dict[str, p.Payload] = {
    "acknowledged": p.DrugAlertAcknowledged(
        alert_id="a-1", district="vesterbro", acknowledged_by="ops", seconds_to_acknowledge=5.0
    ),
    "resolved": p.DrugAlertResolved(
        alert_id="a-1",
        district="vesterbro",
        reason=AlertReason.ADULTERANT_FOUND,
        episode="e",
        last_seen=T,
        quiet_period_s=3600,
    ),
    "withdrawn": p.DrugAlertWithdrawn(
        alert_id="a-1",
        district="vesterbro",
        reason=AlertReason.OVERDOSE_CLUSTER,
        episode="e",
        since=T,
        overdoses_remaining=1,
        threshold=3,
    ),
}


@pytest.mark.parametrize("kind", sorted(_FOLLOW_UPS))
def test_an_alert_s_follow_up_for_an_unknown_payload_district_is_dead_lettered(kind: str) -> None:
    known = f.wrap(_FOLLOW_UPS[kind], T, None, "vesterbro")
    unknown = f.wrap(
        _FOLLOW_UPS[kind].model_copy(update={"district": "atlantis"}), T, None, "vesterbro"
    )
    decoded, rejected = domain.decode_batch([f.record(known, 0), f.record(unknown, 1)], CITY)
    assert [d.record.offset for d in decoded] == [0]
    assert [(r.record.offset, r.reason) for r in rejected] == [(1, "unknown district in payload")]


def test_the_same_event_id_from_two_sources_is_two_events() -> None:
    """Deduplication is by (source, id): two facilities may reuse an id (their own clients)."""
    shared_id = uuid.uuid4()
    a = f.wrap(p.VisitRefused(reason=RefusalReason.CAPACITY), T, "halmtorv", id=shared_id)
    b = f.wrap(p.VisitRefused(reason=RefusalReason.CAPACITY), T, "nordvest", id=shared_id)
    decoded, _ = domain.decode_batch([f.record(a, 0), f.record(b, 1)], CITY)
    kept = domain.first_occurrences(decoded)
    assert [d.record.offset for d in kept] == [0, 1]
    assert kept[0].dedup_key == ("/facilities/halmtorv", str(shared_id))
    changes = domain.project_decoded(kept, CITY)
    refusals = {k[0]: v["refusals"] for k, v in changes.daily.items()}
    assert refusals == {"vesterbro": 1, "nordvest": 1}


# --- every field of what the store writes -----------------------------------------------------


def test_a_visit_start_keeps_every_fact_of_the_first_report() -> None:
    ch = domain.project(
        [
            f.visit_started(
                "v1",
                T,
                facility="nordvest",
                client=3,
                route=Route.SNORT,
                substances=(Substance.COCAINE,),
                first=True,
                assisted=True,
            ),
            f.visit_started("v1", T + timedelta(minutes=5), facility="nordvest", client=4),
        ],
        CITY,
    )
    assert ch.visit_starts == {
        ("nordvest", "v1"): domain.VisitStart(
            facility="nordvest",
            visit_id="v1",
            district="nordvest",
            day=date(2026, 11, 27),
            start_time=T,
            client_pseudonym=f.pseudonym(3),
            pseudonym_key=p.LEGACY_KEY_ID,  # the factory's events name no key: the legacy one
            route="snort",
            substances=("cocaine",),
            assisted_injection=True,
            first_visit=True,
        )
    }


def test_the_earliest_end_wins_in_any_order() -> None:
    early, late = T + timedelta(minutes=20), T + timedelta(minutes=30)
    for order in ((early, late), (late, early)):
        ch = domain.project([f.visit_ended("v1", t, facility="amager") for t in order], CITY)
        assert ch.visit_ends == {("amager", "v1"): domain.VisitEnd("amager", "v1", "amager", early)}


def test_stock_movements_carry_their_event_and_sign() -> None:
    delivery = f.delivered(T, {SupplyItem.FOIL: 40}, facility="amager")
    dispensing = f.dispensed(T + timedelta(hours=1), {SupplyItem.FOIL: 4}, facility="amager")
    ch = domain.project([delivery, dispensing], CITY)
    assert ch.stock_movements == [
        domain.StockMovement("/facilities/amager", str(delivery.id), "amager", "foil", T, 40),
        domain.StockMovement(
            "/facilities/amager", str(dispensing.id), "amager", "foil", dispensing.time, -4
        ),
    ]
    day = ("amager", date(2026, 11, 27))
    assert ch.daily == {day: {"supplies_dispensed": 4}}  # deliveries are not dispensing
    assert dict(ch.breakdown) == {(*day, "supply_item", "foil"): 4}


def test_a_stock_count_keeps_every_field_and_the_latest_wins() -> None:
    ch = domain.project(
        [
            f.counted(T, {SupplyItem.FOIL: 9}, facility="amager"),
            f.counted(T + timedelta(hours=1), {SupplyItem.FOIL: 5}, facility="amager"),
        ],
        CITY,
    )
    assert ch.stock_counts == {
        ("amager", "foil"): domain.StockCount("amager", "foil", T + timedelta(hours=1), 5)
    }


def test_every_stock_count_report_is_kept_with_its_fields_for_a_void_to_restore() -> None:
    later = f.counted(T + timedelta(hours=1), {SupplyItem.FOIL: 5}, facility="amager")
    earlier = f.counted(T, {SupplyItem.FOIL: 9, SupplyItem.SYRINGES: 40}, facility="amager")
    ch = domain.project([later, earlier], CITY)  # the earlier count arrives late
    assert sorted(ch.stock_count_reports, key=lambda r: (r.counted_at, r.item)) == [
        domain.StockCountReport(earlier.source, str(earlier.id), "amager", "foil", T, 9),
        domain.StockCountReport(earlier.source, str(earlier.id), "amager", "syringes", T, 40),
        domain.StockCountReport(
            later.source, str(later.id), "amager", "foil", T + timedelta(hours=1), 5
        ),
    ]
    # a void of both counts names each report once, by the room's source and the event id
    undo = domain.retraction([later, earlier], CITY)
    assert undo.stock_counts == sorted(
        {(later.source, str(later.id)), (earlier.source, str(earlier.id))}
    )


def test_the_first_withdrawal_of_an_alert_in_log_order_wins() -> None:
    def withdrawn(alert_id: str, at: datetime) -> f.Envelope:
        data = p.DrugAlertWithdrawn(
            alert_id=alert_id,
            district="amager",
            reason=AlertReason.OVERDOSE_CLUSTER,
            episode="overdose_cluster/amager/2026-11-27T08:00:00+00:00",
            since=T - timedelta(hours=2),
            overdoses_remaining=1,
            threshold=3,
        )
        return f.wrap(data, at, facility=None, district="amager")

    ch = domain.project(
        [
            withdrawn("a7", T + timedelta(minutes=5)),
            withdrawn("a7", T),  # redelivered with another time: the first stays
            withdrawn("b2", T + timedelta(minutes=9)),
        ],
        CITY,
    )
    assert ch.alert_withdrawals == {"a7": T + timedelta(minutes=5), "b2": T + timedelta(minutes=9)}


def test_an_alert_keeps_every_field_of_its_event() -> None:
    start, end = T - timedelta(hours=2), T
    env = f.wrap(
        p.DrugAlertRaised(
            alert_id="a7",
            district="amager",
            reason=AlertReason.OVERDOSE_CLUSTER,
            episode="overdose_cluster/amager/x",
            substance=Substance.FENTANYL,
            overdoses_in_window=4,
            window_start=start,
            window_end=end,
            facility_id="amager",
        ),
        T,
        None,
        "amager",
    )
    no_substance = f.wrap(
        p.DrugAlertRaised(
            alert_id="a8", district="amager", reason=AlertReason.OVERDOSE_CLUSTER, episode="e8"
        ),
        T,
        None,
        "amager",
    )
    ch = domain.project([env, no_substance], CITY)
    assert ch.alerts == [
        domain.Alert(
            alert_id="a7",
            episode="overdose_cluster/amager/x",
            district="amager",
            raised_at=T,
            reason="overdose_cluster",
            substance="fentanyl",
            facility_id="amager",
            overdoses_in_window=4,
            window_start=start,
            window_end=end,
        ),
        domain.Alert("a8", "e8", "amager", T, "overdose_cluster", None, None, None, None, None),
    ]


# --- references, rejects and the district an event belongs to ---------------------------------


def test_reference_reasons_word_for_word() -> None:
    street = p.StreetNeedlesCollected(district="atlantis", area="x", count=1)
    from_facility = f.wrap(street, T, "halmtorv")
    from_district = f.wrap(street, T, None, "vesterbro")
    assert domain.check_references(from_facility, CITY) == "unknown district in payload"
    assert domain.check_references(from_district, CITY) == "unknown district in payload"
    assert domain.check_references(f.refused(T), CITY) is None
    assert domain.check_references(_alert(None), CITY) is None


def test_a_facility_may_report_a_street_collection_for_any_known_district() -> None:
    env = f.wrap(p.StreetNeedlesCollected(district="amager", area="x", count=2), T, "halmtorv")
    decoded, rejected = domain.decode_batch([f.record(env)], CITY)
    assert rejected == [] and decoded[0].district == "amager"


def test_a_bad_record_does_not_stop_the_batch() -> None:
    good, unknown = f.refused(T), f.refused(T, facility="atlantis")
    bad = f.record(good, 0, value=b"{not json")
    decoded, rejected = domain.decode_batch([bad, f.record(unknown, 1), f.record(good, 2)], CITY)
    assert [d.record.offset for d in decoded] == [2]
    assert [(r.record.offset, r.reason) for r in rejected] == [
        (0, "value is not valid JSON"),
        (1, "unknown facility in source"),
    ]
    assert decoded[0].facility == "halmtorv" and decoded[0].district == "vesterbro"
    assert decoded[0].event == event_of(good)


def test_the_district_of_an_event() -> None:
    assert domain.district_of(f.refused(T, facility="nordvest"), CITY) == "nordvest"
    assert domain.district_of(f.street_needles(T, "sydhavn", count=1), CITY) == "sydhavn"
    assert domain.district_of(_alert("halmtorv", district="amager"), CITY) == "amager"


# --- counts of things -------------------------------------------------------------------------


def test_street_needles_and_sharps_by_count_or_weight() -> None:
    ch = domain.project(
        [
            f.street_needles(T, "sydhavn", count=17, weight_kg=0.35),
            f.street_needles(T, "sydhavn", weight_kg=0.1),  # weight only: no count added
            f.sharps(T, count=4),  # count only: no weight added
        ],
        CITY,
    )
    day = date(2026, 11, 27)
    assert ch.daily == {
        ("sydhavn", day): {"street_needles_count": 17, "street_needles_kg": Decimal("0.45")},
        ("vesterbro", day): {"sharps_returned_count": 4, "sharps_returned_kg": Decimal(0)},
    }


def test_incidents_are_broken_down_by_kind_and_outcome_per_district_and_day() -> None:
    ch = domain.project(
        [
            f.incident(T, IncidentKind.SEIZURE, outcome=Outcome.LEFT, facility="amager"),
            f.incident(T, IncidentKind.SEIZURE, outcome=Outcome.DIED, facility="amager"),
        ],
        CITY,
    )
    day = date(2026, 11, 27)
    assert dict(ch.breakdown) == {
        ("amager", day, "incident_kind", "seizure"): 2,
        ("amager", day, "incident_outcome", "left"): 1,
        ("amager", day, "incident_outcome", "died"): 1,
    }


def test_decoded_events_count_on_the_citys_calendar_day() -> None:
    late_evening = datetime(2026, 7, 1, 23, 30, tzinfo=UTC)  # 01:30 on 2 July in Copenhagen
    decoded, _ = domain.decode_batch([f.record(f.refused(late_evening))], CITY)
    ch = domain.project_decoded(decoded, CITY)
    assert set(ch.daily) == {("vesterbro", date(2026, 7, 2))}


def test_an_unchecked_event_of_an_unknown_facility_is_a_named_error() -> None:
    with pytest.raises(ValueError, match=r"^event names no known facility$"):
        domain.district_of(f.refused(T, facility="atlantis"), CITY)
